#pragma once
/// \file
/// The bearer token `serve` and `exec` read from --token-file: one reading for both, so a file
/// that works for one works for the other.

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "cli_error.h"

namespace jobtrail::cli {

/// The token in `path`, without surrounding whitespace. Throws CliError (exit_bad_input) if the
/// file cannot be read or holds nothing else: an empty token would leave a server open.
inline std::string read_token_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw CliError(exit_bad_input, fmt::format("cannot read --token-file '{}'", path));
  std::stringstream content;
  content << file.rdbuf();
  std::string token = content.str();
  // Files written by `echo` end in a newline that is not part of the token.
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!token.empty() && is_space(token.back())) token.pop_back();
  std::size_t first = 0;
  while (first < token.size() && is_space(token[first])) ++first;
  token.erase(0, first);
  if (token.empty()) throw CliError(exit_bad_input, fmt::format("--token-file '{}' is empty", path));
  return token;
}

}  // namespace jobtrail::cli
