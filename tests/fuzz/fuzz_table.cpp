// The table renderer with hostile cells (escape sequences, C1 controls, invalid UTF-8, NUL).
// What it prints must be safe for a terminal: valid UTF-8 with no control character but the
// line ends, so no cell can move the cursor, set a title or eat a neighbour's bytes; and its
// columns are aligned: each cell starts where its column starts, two spaces apart, with no
// padding after the last (widths in display columns, the renderer's documented measure: CJK
// and emoji two, combining marks none). The same table as CSV parses back (RFC 4180) into one
// record per row, each with one field per column, none starting a spreadsheet formula, and
// its bytes are as safe for a terminal but for the line breaks a quoted field carries.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "jobtrail/view/output.h"

namespace {

using jobtrail::view::Align;

[[noreturn]] void fail(const char* what, const std::string& output) {
  std::fprintf(stderr, "invariant broken: %s in:\n", what);
  for (const unsigned char c : output) std::fprintf(stderr, c >= 0x20 && c < 0x7F ? "%c" : "\\x%02x", c);
  std::fprintf(stderr, "\n");
  std::abort();
}

/// The code points of valid UTF-8 (shortest forms, no surrogates), or false.
bool decode_utf8(std::string_view text, std::vector<char32_t>& code_points) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    char32_t value = length == 1 ? lead : lead & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      value = value << 6 | (next & 0x3F);
    }
    constexpr char32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};
    if ((length > 1 && value < shortest[length]) || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
      return false;
    }
    code_points.push_back(value);
    i += length;
  }
  return true;
}

/// The renderer's measure (display columns, from Unicode's tables), held to what any measure
/// must satisfy: ASCII is one column a byte, and no code point takes more than two.
std::size_t width(std::string_view text) {
  const std::size_t columns = jobtrail::view::display_width(text);
  std::vector<char32_t> code_points;
  if (!decode_utf8(text, code_points)) fail("a shown cell that is not UTF-8", std::string(text));
  bool ascii = true;
  for (const char32_t c : code_points) ascii = ascii && c < 0x80;
  if ((ascii && columns != code_points.size()) || columns > 2 * code_points.size()) {
    fail("a display width no terminal has", std::string(text));
  }
  return columns;
}

struct Row {
  std::vector<std::string> cells;
  bool detail = false;
};

/// The CSV invariants (see the top of this file). CSV has a table's columns with a field.
void check_csv(const jobtrail::view::Table& table, const std::vector<Row>& rows,
               const std::vector<jobtrail::view::Column>& columns) {
  std::size_t fields = 0;
  for (const auto& column : columns) fields += column.field.empty() ? 0 : 1;
  if (fields == 0) return;  // no CSV form; print_csv refuses it
  std::ostringstream printed;
  table.print_csv(printed);
  const std::string csv = printed.str();
  std::vector<char32_t> code_points;
  if (!decode_utf8(csv, code_points)) fail("invalid UTF-8 in CSV", csv);
  for (std::size_t i = 0; i < code_points.size(); ++i) {
    const char32_t c = code_points[i];
    const bool line_break = c == '\n' || c == '\t' || (c == '\r' && i + 1 < code_points.size() && code_points[i + 1] == '\n');
    if (((c < 0x20 && !line_break) || (c >= 0x7F && c <= 0x9F))) fail("a control character in CSV", csv);
  }
  // Parse it back: records of fields, a quoted field's quotes doubled.
  std::vector<std::vector<std::string>> records(1);
  std::string field;
  bool quoted = false, closed = false;
  for (std::size_t i = 0; i < csv.size(); ++i) {
    const char c = csv[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < csv.size() && csv[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
        closed = true;
      }
    } else if (c == '"') {
      if (!field.empty() || closed) fail("a stray quote in CSV", csv);
      quoted = true;
    } else if (c == ',' || c == '\n') {
      records.back().push_back(field);
      field.clear();
      closed = false;
      if (c == '\n') records.emplace_back();
    } else {
      if (closed) fail("text after a closing quote in CSV", csv);
      field += c;
    }
  }
  if (quoted || !field.empty() || !records.back().empty()) fail("CSV that does not end a record", csv);
  records.pop_back();
  std::size_t expected = 1;
  for (const Row& row : rows) expected += row.detail ? 0 : 1;
  if (records.size() != expected) fail("a CSV record per row", csv);
  for (const auto& record : records) {
    if (record.size() != fields) fail("a CSV record with the wrong number of fields", csv);
    for (const std::string& value : record) {
      if (value.empty() || std::string_view("=+-@\t\r").find(value.front()) == std::string_view::npos) continue;
      if (value.find_first_not_of("-0123456789.") != std::string::npos) fail("a CSV field starting a formula", csv);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const std::size_t columns = input.ConsumeIntegralInRange<std::size_t>(0, 5);
  std::vector<std::string> headers;
  std::vector<Align> alignment;
  for (std::size_t c = 0; c < columns; ++c) {
    headers.push_back(input.ConsumeRandomLengthString(16));
    alignment.push_back(input.ConsumeBool() ? Align::right : Align::left);
  }
  std::vector<jobtrail::view::Column> table_columns;
  for (std::size_t c = 0; c < headers.size(); ++c) {
    // A column without a header but with a CSV field would be CSV's only: these are all drawn.
    table_columns.emplace_back(headers[c], headers[c].empty() ? "" : "field" + std::to_string(c), alignment[c]);
  }
  jobtrail::view::Table table(table_columns);
  std::vector<Row> rows;
  while (input.remaining_bytes() > 0 && rows.size() < 16) {
    Row row;
    row.detail = input.ConsumeIntegralInRange<int>(0, 5) == 0;
    const std::size_t cells = row.detail ? 1 : input.ConsumeIntegralInRange<std::size_t>(0, 6);
    for (std::size_t c = 0; c < cells; ++c) row.cells.push_back(input.ConsumeRandomLengthString(32));
    if (row.detail) {
      table.add_detail_line(row.cells[0]);
    } else {
      table.add_row(std::vector<jobtrail::view::Cell>(row.cells.begin(), row.cells.end()));
    }
    rows.push_back(std::move(row));
  }
  std::ostringstream printed;
  table.print(printed);
  const std::string output = printed.str();

  // Safe for a terminal.
  std::vector<char32_t> code_points;
  if (!decode_utf8(output, code_points)) fail("invalid UTF-8", output);
  for (const char32_t c : code_points) {
    if ((c < 0x20 && c != '\n') || (c >= 0x7F && c <= 0x9F)) fail("a control character", output);
  }

  // Aligned: the line each row must be, from the widths of the shown cells.
  std::vector<std::vector<std::string>> shown;  // the non-detail rows, header first
  if (!headers.empty()) shown.push_back(headers);
  for (const Row& row : rows) {
    if (!row.detail) shown.push_back(row.cells);
  }
  for (auto& row : shown) {
    for (std::string& cell : row) cell = jobtrail::view::printable(cell);
  }
  std::vector<std::size_t> widths;
  for (const auto& row : shown) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], width(row[c]));
  }
  std::vector<std::string> lines;
  std::istringstream split(output);
  for (std::string line; std::getline(split, line);) lines.push_back(line);
  if (lines.size() != rows.size() + (headers.empty() ? 0 : 1)) {
    fail("a row that is not one line", output);
  }
  std::size_t next_shown = 0;
  for (std::size_t l = 0; l < lines.size(); ++l) {
    const bool detail = !headers.empty() ? l > 0 && rows[l - 1].detail : rows[l].detail;
    if (detail) {
      if (!lines[l].empty() && lines[l].back() == ' ') fail("trailing blanks on a detail line", output);
      continue;
    }
    const std::vector<std::string>& row = shown[next_shown++];
    std::size_t used = row.size();
    while (used > 0 && row[used - 1].empty()) --used;
    std::size_t at = 0;  // byte offset in the line
    for (std::size_t c = 0; c < used; ++c) {
      const bool right = c < alignment.size() && alignment[c] == Align::right;
      const std::size_t pad = widths[c] - width(row[c]);
      const std::string expected = c == 0 ? "" : "  ";
      const std::string cell = right ? std::string(pad, ' ') + row[c]
                                     : c + 1 == used ? row[c] : row[c] + std::string(pad, ' ');
      if (lines[l].compare(at, expected.size() + cell.size(), expected + cell) != 0) {
        fail("a cell out of its column", output);
      }
      at += expected.size() + cell.size();
    }
    if (at != lines[l].size()) fail("bytes after the last cell", output);
  }
  check_csv(table, rows, table_columns);
  return 0;
}
