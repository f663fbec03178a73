// The table renderer with hostile bytes: what reaches a terminal is whole UTF-8 without
// controls (found by tests/fuzz/fuzz_table, regressions/table/); the same table as CSV, safe
// to open in a spreadsheet; colour that never moves a column, and when colour is used.

#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "jobtrail/view/output.h"

using namespace jobtrail::view;

TEST_CASE("printable escapes C1 controls and bytes that are not UTF-8, and keeps whole characters", "[cli][hostile]") {
  CHECK(printable("\x9b" "31m") == "\\x9b31m");            // a raw CSI byte
  CHECK(printable("\xc2\x9b" "31m") == "\\xc2\\x9b31m");   // CSI as UTF-8 (U+009B)
  CHECK(printable("a\xff\xfe" "b") == "a\\xff\\xfeb");
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");            // an overlong "/"
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");   // a surrogate
  CHECK(printable("\xe6\x97\xa5") == "\xe6\x97\xa5");      // a cut-off sequence is not whole:
  CHECK(printable("\xe6\x97") == "\\xe6\\x97");
  CHECK(printable("µs ✓ \xc2\xa0 é") == "µs ✓ \xc2\xa0 é");  // U+00A0 is no control
}

TEST_CASE("a table's headers are escaped like its cells", "[cli][hostile]") {
  Table table({"key\x1b]0;title\x07", "v"});
  table.add_row({"a", "b"});
  std::ostringstream out;
  table.print(out);
  CHECK(out.str() == "key\\x1b]0;title\\x07  v\na                    b\n");
}

TEST_CASE("display width counts the columns a terminal draws", "[cli][terminal]") {
  CHECK(display_width("plain") == 5);
  CHECK(display_width("├─ 850µs") == 8);          // box drawing and µ: one column each
  CHECK(display_width("請求書") == 6);             // CJK: two columns each (they counted 3)
  CHECK(display_width("メール") == 6);             // katakana
  CHECK(display_width("한국") == 4);               // Hangul syllables
  CHECK(display_width("🎉") == 2);                 // emoji with emoji presentation
  CHECK(display_width("ＡＢ") == 4);               // fullwidth forms
  CHECK(display_width("cafe\xcc\x81") == 4);       // e + combining acute: the mark takes none
  CHECK(display_width("a\xe2\x80\x8d" "b") == 2);  // a zero-width joiner takes none
  CHECK(display_width("\xf0\xa0\x80\x80") == 2);   // U+20000, CJK extension B
  CHECK(display_width("\xff") == 1);               // a stray byte: one column
}

TEST_CASE("a multi-line text becomes escaped lines", "[cli][terminal]") {
  CHECK(printable_lines("one") == std::vector<std::string>{"one"});
  CHECK(printable_lines("") == std::vector<std::string>{""});
  CHECK(printable_lines("one\r\n\ttwo \x1b[2J\n") == std::vector<std::string>{"one", "    two \\x1b[2J"});
}

namespace {

/// `text` without its SGR sequences (ESC [ ... m), and how many it had.
std::string without_sgr(const std::string& text, std::size_t* removed = nullptr) {
  std::string plain;
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      const std::size_t end = text.find('m', i);
      REQUIRE(end != std::string::npos);
      i = end;
      ++count;
      continue;
    }
    plain += text[i];
  }
  if (removed != nullptr) *removed = count;
  return plain;
}

std::string csv_of(const Table& table, bool header = true) {
  std::ostringstream out;
  table.print_csv(out, header);
  return out.str();
}

}  // namespace

TEST_CASE("a CSV field is quoted when RFC 4180 says so, with its quotes doubled", "[cli][csv]") {
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("") == "");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("\"") == "\"\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(csv_field("crlf\r\nline") == "\"crlf\r\nline\"");
  CHECK(csv_field("tab\there") == "tab\there");  // a tab needs no quotes
  CHECK(csv_field("  spaces kept  ") == "  spaces kept  ");
  CHECK(csv_field("請求書") == "請求書");
}

TEST_CASE("a CSV field cannot start a spreadsheet formula (OWASP's leading quote)", "[cli][csv][hostile]") {
  CHECK(csv_field("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0");
  CHECK(csv_field("+SUM(A1)") == "'+SUM(A1)");
  CHECK(csv_field("-2+3+cmd") == "'-2+3+cmd");
  CHECK(csv_field("@SUM(A1)") == "'@SUM(A1)");
  CHECK(csv_field("\t=1") == "'\t=1");
  CHECK(csv_field("\r\n=1") == "\"'\r\n=1\"");
  CHECK(csv_field("=HYPERLINK(\"http://x\",\"y\")") == "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
  CHECK(csv_field("-") == "'-");
  // Plain numbers stay numbers: a negative span (clock skew) is no formula.
  CHECK(csv_field("-1500000") == "-1500000");
  CHECK(csv_field("-0.25") == "-0.25");
  CHECK(csv_field("-1.") == "'-1.");
  CHECK(csv_field("-1e5") == "'-1e5");
  // Only the start matters.
  CHECK(csv_field("a=b") == "a=b");
}

TEST_CASE("a CSV field keeps line breaks but no byte a terminal acts on", "[cli][csv][hostile]") {
  CHECK(csv_field("evil\x1b]0;pwned\x07") == "evil\\x1b]0;pwned\\x07");
  CHECK(csv_field("csi\xc2\x9b" "31m") == "csi\\xc2\\x9b31m");
  CHECK(csv_field("bad\xff") == "bad\\xff");
  // A carriage return not ending a line would draw over the line: it is shown, not obeyed.
  CHECK(csv_field("safe\rEVIL") == "safe\\rEVIL");
  CHECK(csv_field("\rEVIL") == "\\rEVIL");
}

TEST_CASE("a CSV record is its fields joined by commas, ended by LF", "[cli][csv]") {
  std::ostringstream out;
  write_csv_record(out, {"a", "b,c", "", "=d"});
  write_csv_record(out, {});
  CHECK(out.str() == "a,\"b,c\",,'=d\n\n");
}

TEST_CASE("a table's columns print as CSV: fields, raw values, CSV-only and table-only columns", "[cli][csv]") {
  Table table({{"WHEN", "at"}, {"JOB", "job_id"}, {"WAIT", "wait_us", Align::right}, {"", "wait_ongoing"}, {"NOTE"}});
  table.add_row({Cell("2026-12-01 10:00:00.000Z", "2026-12-01T10:00:00.000000Z"), "a,\"1\"", Cell("2h00m+", "7200000000"),
                 Cell("", "true"), "table only"});
  table.add_detail_line("a detail line: the table's only");
  table.add_row({Cell("-", ""), "=cmd", Cell("-", "")});  // cells missing at the end: empty fields
  CHECK(csv_of(table) ==
        "at,job_id,wait_us,wait_ongoing\n"
        "2026-12-01T10:00:00.000000Z,\"a,\"\"1\"\"\",7200000000,true\n"
        ",'=cmd,,\n");
  CHECK(csv_of(table, false) ==
        "2026-12-01T10:00:00.000000Z,\"a,\"\"1\"\"\",7200000000,true\n"
        ",'=cmd,,\n");
  // The table: shown texts, the CSV-only column left out, the table-only one in.
  std::ostringstream shown;
  table.print(shown);
  CHECK(shown.str() ==
        "WHEN                      JOB      WAIT  NOTE\n"
        "2026-12-01 10:00:00.000Z  a,\"1\"  2h00m+  table only\n"
        "a detail line: the table's only\n"
        "-                         =cmd        -\n");
  std::ostringstream rows_only;
  table.print(rows_only, {false, false});
  CHECK(rows_only.str() == shown.str().substr(shown.str().find('\n') + 1));
}

TEST_CASE("a key/value block has no CSV form", "[cli][csv]") {
  Table block({});
  block.add_row({"key", "value"});
  CHECK_THROWS_AS(csv_of(block), std::logic_error);
}

TEST_CASE("colour wraps toned cells outside their padding: the columns stay where they were", "[cli][colour]") {
  Table table({{"JOB", "job_id"}, {"STATE", "state"}, {"N", "n", Align::right}, {"FLAGS", "anomalies"}});
  table.add_row({"請求書-1", Cell("failed", Tone::failure), Cell("12", Tone::fatal), Cell("duplicate_success", Tone::alert)});
  table.add_row({"b", Cell("succeeded", Tone::success), "3", Cell("", Tone::alert)});
  std::ostringstream plain, coloured;
  table.print(plain);
  table.print(coloured, {true, true});
  std::size_t sequences = 0;
  CHECK(without_sgr(coloured.str(), &sequences) == plain.str());
  CHECK(sequences == 8);  // four toned cells with text, each opened and reset; the empty one not
  CHECK(coloured.str() ==
        "JOB       STATE       N  FLAGS\n"
        "請求書-1  \x1b[31mfailed\x1b[0m     \x1b[1;31m12\x1b[0m  \x1b[1;35mduplicate_success\x1b[0m\n"
        "b         \x1b[32msucceeded\x1b[0m   3\n");
  // A cell cannot bring its own colour: its escape is shown, not obeyed.
  Table hostile({Column("X", "x")});
  hostile.add_row({Cell("\x1b[31mred", Tone::success)});
  std::ostringstream out;
  hostile.print(out, {true, true});
  CHECK(out.str() == "X\n\x1b[32m\\x1b[31mred\x1b[0m\n");
}

TEST_CASE("colour is used when asked, or on a terminal that can show it and NO_COLOR does not forbid",
          "[cli][colour]") {
  // always and never decide alone (a command-line choice overrides NO_COLOR, as no-color.org asks).
  CHECK(use_colour(ColourMode::always, false, "1", "dumb"));
  CHECK_FALSE(use_colour(ColourMode::never, true, nullptr, "xterm-256color"));
  // auto: a terminal...
  CHECK(use_colour(ColourMode::automatic, true, nullptr, "xterm-256color"));
  CHECK_FALSE(use_colour(ColourMode::automatic, false, nullptr, "xterm-256color"));  // a pipe or a file
  // ...where NO_COLOR is absent or empty...
  CHECK_FALSE(use_colour(ColourMode::automatic, true, "1", "xterm-256color"));
  CHECK_FALSE(use_colour(ColourMode::automatic, true, "0", "xterm-256color"));  // any non-empty value
  CHECK(use_colour(ColourMode::automatic, true, "", "xterm-256color"));
  // ...and TERM names a terminal that is not dumb.
  CHECK_FALSE(use_colour(ColourMode::automatic, true, nullptr, "dumb"));
  CHECK_FALSE(use_colour(ColourMode::automatic, true, nullptr, nullptr));
  CHECK_FALSE(use_colour(ColourMode::automatic, true, nullptr, ""));
}
