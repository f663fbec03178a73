#pragma once
/// \file
/// How results reach the terminal: aligned tables for people, JSON lines for programs.

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace jobtrail::view {

/// Columns in a table print left- or right-aligned (numbers and durations read best right).
enum class Align { left, right };

/// A table of text cells printed with aligned columns, two spaces apart, no trailing
/// blanks, measured in display columns (see display_width). Cells are sanitized (see
/// printable), so a newline in an error message cannot break a row and an escape sequence
/// cannot reach the terminal. Not thread-safe.
class Table {
 public:
  /// `headers` may be empty for a table without a header row (key/value blocks).
  explicit Table(std::vector<std::string> headers, std::vector<Align> alignment = {});

  void add_row(std::vector<std::string> cells);
  /// A line printed below the last row as it is (after sanitizing), outside the columns:
  /// for backtraces, which would otherwise stretch a column to their longest line.
  void add_detail_line(std::string line);
  bool empty() const noexcept { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> alignment_;
  struct Row {
    std::vector<std::string> cells;
    bool is_detail = false;  ///< one free-form line in cells[0]
  };
  std::vector<Row> rows_;
};

/// Columns a string takes on a terminal: 2 for each East Asian wide or fullwidth code point
/// (CJK, Hangul, emoji), 0 for combining marks and format characters (a zero-width joiner),
/// 1 for the rest, including each byte that is not UTF-8. An emoji sequence joined by ZWJ
/// counts each of its emoji (terminals differ in drawing it as one).
std::size_t display_width(std::string_view text);

/// `text` with control characters shown as escapes ("\n", "\t", "\x1b"), for one line.
std::string printable(std::string_view text);

/// `text` (a multi-line message, a backtrace) as the lines a terminal should show: split at
/// newlines (a "\r" before one dropped), tabs expanded to four spaces, each line escaped as
/// by printable and without trailing blanks; no line for a final newline. At least one line.
std::vector<std::string> printable_lines(std::string_view text);

/// Writes `value` as one line of JSON. Invalid UTF-8 from a worker becomes U+FFFD
/// instead of aborting the whole listing.
void print_json_line(std::ostream& out, const nlohmann::ordered_json& value);

}  // namespace jobtrail::view
