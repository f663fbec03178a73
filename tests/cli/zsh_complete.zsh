#!/usr/bin/env zsh
# Types LINE and a Tab into a real interactive zsh (in a pseudo-terminal) that has the
# completion functions of DIR on its $fpath, and prints the words the completion offered,
# one per line. Usage: zsh zsh_complete.zsh DIR LINE
emulate -L zsh
zmodload zsh/zpty || { print -u2 "zsh_complete: no zsh/zpty"; exit 3 }
local dir=$1 line=$2
local work=$(mktemp -d)
trap 'zpty -d shell 2>/dev/null; rm -rf $work' EXIT
: > $work/offered
zpty shell zsh -f -i
# Setup: the completion system, and compadd wrapped so that it also writes down the words
# it was given that match what was typed (-O: "store the matches in an array instead").
zpty -w shell "fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -d $work/dump"
zpty -w shell "compadd() { if (( ! \${@[(I)-[OAD]]} )); then local -a offered; builtin compadd -O offered \"\$@\"; print -rl -- \"\${offered[@]}\" >> $work/offered; fi; builtin compadd \"\$@\"; }"
zpty -w shell "print -r ready >| $work/ready"
for (( i = 0; i < 100; i++ )); do [[ -e $work/ready ]] && break; sleep 0.1; done
zpty -w -n shell "$line"$'\t'
sleep 0.5
# Ctrl-U drops the line, then a command says the completion is over.
zpty -w shell $'\C-u'"print -r done >| $work/done"
for (( i = 0; i < 100; i++ )); do [[ -e $work/done ]] && break; sleep 0.1; done
[[ -e $work/done ]] || { print -u2 "zsh_complete: the shell did not answer"; exit 3 }
LC_ALL=C sort -u $work/offered
