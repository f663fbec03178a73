#pragma once
/// \file
/// How results reach the terminal: aligned tables for people (in colour where that is
/// wanted), CSV and JSON lines for programs.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace jobtrail::view {

/// Columns in a table print left- or right-aligned (numbers and durations read best right).
enum class Align { left, right };

/// What a cell means, for colour on a terminal. The renderer maps each tone to one colour
/// (output.cpp holds the only table of escape sequences); job_view.h says which state gets
/// which tone. CSV and JSON are never coloured.
enum class Tone : std::uint8_t {
  plain,    ///< no colour
  success,  ///< succeeded: green
  failure,  ///< failed (it may retry): red
  fatal,    ///< dead (gave up), a check's error: bold red
  active,   ///< started / running: yellow
  waiting,  ///< enqueued: blue
  stopped,  ///< cancelled: magenta
  alert,    ///< anomaly flags (an impossible sequence): bold magenta
};

/// One cell of a Table: `shown` is what people read in the aligned table ("1.2s", "-",
/// "3m ago"); `value` is what CSV exports for it: the raw value (a full ID, an RFC 3339 UTC
/// time, integer microseconds, "" for none). A cell made from one text uses it for both.
/// Both live in one string (40 bytes a cell, the text inline when short): a listing holds
/// every cell until its columns are measured, and with two strings a cell `ls` of 125,000
/// jobs took 236 MB instead of 179 MB (measured; see the commit that made it one).
class Cell {
 public:
  Cell(std::string text, Tone tone = Tone::plain);
  Cell(const char* text);
  Cell(std::string_view shown, std::string_view value, Tone tone = Tone::plain);

  std::string_view shown() const noexcept { return std::string_view(text_).substr(0, shown_size_); }
  std::string_view value() const noexcept { return same_ ? shown() : std::string_view(text_).substr(shown_size_); }
  Tone tone() const noexcept { return tone_; }

 private:
  friend class Table;  // escapes the shown text in place (add_row)
  void set_shown(std::string shown);

  std::string text_;  ///< the shown text, then the value unless it is the same
  std::uint32_t shown_size_ = 0;
  bool same_ = true;
  Tone tone_ = Tone::plain;
};

/// A column of a Table, defined once for both renderings: `header` names it in the aligned
/// table, `field` in CSV's header row (the JSON documents' field name, e.g. "first_event_at").
/// An empty `field` makes a column the table's only (a column made from one text is one); an
/// empty `header` makes it CSV's only (a raw value the table folds into another cell, such as
/// wait_ongoing, which the table shows as the trailing "+" of WAIT).
struct Column {
  Column(std::string header_text);
  Column(const char* header_text);
  Column(std::string header_text, std::string field_name, Align alignment = Align::left);

  std::string header;
  std::string field;
  Align align = Align::left;
};

/// How Table::print draws: `header` off for the later batches of a followed list (one header
/// for the whole stream); `colour` wraps each toned cell in its escape sequence, outside the
/// padding, so colour never moves a column.
struct TableStyle {
  bool header = true;
  bool colour = false;
};

/// A table of cells, printed either aligned for people (columns two spaces apart, no
/// trailing blanks, measured in display columns, see display_width) or as CSV for programs
/// (print_csv). Shown texts are sanitized (see printable), so a newline in an error message
/// cannot break a row and an escape sequence cannot reach the terminal. Not thread-safe.
class Table {
 public:
  /// `columns` may be empty for a table without a header row (key/value blocks); rows may then
  /// have any number of cells, and cells beyond the columns print left-aligned.
  explicit Table(std::vector<Column> columns);

  void add_row(std::vector<Cell> cells);
  /// A line printed below the last row as it is (after sanitizing), outside the columns:
  /// for backtraces, which would otherwise stretch a column to their longest line. CSV leaves
  /// detail lines out (a CSV-only column carries what they say).
  void add_detail_line(std::string line);
  bool empty() const noexcept { return rows_.empty(); }
  void print(std::ostream& out, const TableStyle& style = {}) const;
  /// The rows as CSV (see write_csv_record): a header row of the columns' fields unless
  /// `header` is false, then one record per row with each cell's value. Columns without a
  /// field and detail lines are left out. Throws std::logic_error for a table without a CSV
  /// column (a key/value block has no CSV form).
  void print_csv(std::ostream& out, bool header = true) const;

 private:
  std::vector<Column> columns_;
  struct Row {
    std::vector<Cell> cells;
    bool is_detail = false;  ///< one free-form line in cells[0].shown()
  };
  std::vector<Row> rows_;
};

/// One CSV field (RFC 4180), made safe to open in a spreadsheet and to print on a terminal:
/// 1. every byte a terminal would act on is escaped as printable does, except a tab, a line
///    feed and a carriage return just before one, which are data a quoted field carries;
/// 2. a field starting with = + - @ tab or carriage return gets a leading ' (OWASP's advice
///    against CSV/formula injection: a spreadsheet would run "=HYPERLINK(...)" as a formula),
///    unless the whole field is a plain decimal number such as -1500000 (a negative duration),
///    which no spreadsheet reads as a formula;
/// 3. a field containing a comma, a double quote, CR or LF is enclosed in double quotes, and
///    each double quote in it doubled.
std::string csv_field(std::string_view value);

/// Writes one CSV record: the fields (each through csv_field) separated by commas and ended
/// by a line feed. RFC 4180 says CRLF; LF is what the Unix tools a pipe feeds expect, and
/// CSV readers take it (Python's csv module reads the golden files in tests/cli/golden/ back
/// field for field). A CR LF inside a value stays inside its quoted field.
void write_csv_record(std::ostream& out, const std::vector<std::string>& fields);

/// When to colour: --color auto|always|never.
enum class ColourMode { automatic, always, never };

/// Whether output is coloured. `always` and `never` decide alone; `automatic` colours only
/// a terminal (`is_terminal`: stdout is a TTY) whose TERM (`term`, may be null) is set and is
/// not "dumb", and only when NO_COLOR (`no_color`, may be null) is absent or empty
/// (https://no-color.org: present and non-empty disables colour).
bool use_colour(ColourMode mode, bool is_terminal, const char* no_color, const char* term);

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
