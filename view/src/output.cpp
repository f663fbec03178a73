#include "jobtrail/view/output.h"

#include <algorithm>
#include <iterator>
#include <ostream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jobtrail::view {
namespace {

bool is_utf8_continuation(char byte) { return (static_cast<unsigned char>(byte) & 0xC0) == 0x80; }

/// The length of the valid UTF-8 sequence (shortest form, no surrogates, at most U+10FFFF)
/// that `text` starts with a non-ASCII byte of, or 0 when it starts with none.
std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  const std::size_t length = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                             : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
  if (length == 0 || text.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if (!is_utf8_continuation(text[i])) return 0;
  }
  // The second byte's range rules out overlong forms, surrogates and code points past U+10FFFF.
  if ((lead == 0xE0 && byte(1) < 0xA0) || (lead == 0xED && byte(1) > 0x9F) || (lead == 0xF0 && byte(1) < 0x90) ||
      (lead == 0xF4 && byte(1) > 0x8F)) {
    return 0;
  }
  return length;
}

struct CodePointRange {
  char32_t first;
  char32_t last;
};
#include "width_table.inc"

bool in_ranges(char32_t code, const CodePointRange* begin, const CodePointRange* end) {
  const CodePointRange* range =
      std::upper_bound(begin, end, code, [](char32_t value, const CodePointRange& r) { return value < r.first; });
  return range != begin && code <= (range - 1)->last;
}

/// Columns one code point takes: 0 for combining marks and format characters, 2 for East Asian
/// wide and fullwidth ones (CJK, Hangul, emoji), else 1 (width_table.inc, from Unicode).
std::size_t code_point_width(char32_t code) {
  if (in_ranges(code, std::begin(zero_width_ranges), std::end(zero_width_ranges))) return 0;
  if (in_ranges(code, std::begin(double_width_ranges), std::end(double_width_ranges))) return 2;
  return 1;
}

/// The one table of colours: the SGR parameters of each tone (ECMA-48), or none.
std::string_view sgr_parameters(Tone tone) {
  switch (tone) {
    case Tone::plain: return "";
    case Tone::success: return "32";
    case Tone::failure: return "31";
    case Tone::fatal: return "1;31";
    case Tone::active: return "33";
    case Tone::waiting: return "34";
    case Tone::stopped: return "35";
    case Tone::alert: return "1;35";
  }
  return "";
}

/// Writes `cell`, padded to `width` display columns. The colour goes around the text only,
/// after the padding was measured on the text alone: escape sequences never count as columns.
void print_padded(std::ostream& out, const Cell& cell, std::size_t width, Align align, bool colour, bool pad) {
  const std::string padding(pad ? width - std::min(width, display_width(cell.shown())) : 0, ' ');
  if (align == Align::right) out << padding;
  const std::string_view sgr = colour ? sgr_parameters(cell.tone()) : std::string_view();
  if (sgr.empty() || cell.shown().empty()) {
    out << cell.shown();
  } else {
    out << "\x1b[" << sgr << 'm' << cell.shown() << "\x1b[0m";
  }
  if (align == Align::left) out << padding;
}

/// Whether a column appears in the aligned table: all but the CSV-only ones.
bool in_table(const Column& column) { return !column.header.empty() || column.field.empty(); }

/// `text` with every byte a terminal would act on shown as an escape ("\n", "\x1b"): C0
/// controls, DEL, C1 controls and bytes that are not part of valid UTF-8. With
/// `keep_line_breaks` (CSV), tabs, line feeds and a carriage return before a line feed stay.
std::string escape_for_terminal(std::string_view text, bool keep_line_breaks) {
  std::string result;
  result.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto code = static_cast<unsigned char>(text[i]);
    if (code < 0x80) {
      const bool line_break = text[i] == '\n' || text[i] == '\t' ||
                              (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
      if (keep_line_breaks && line_break) {
        result += text[i];
      } else if (text[i] == '\n') {
        result += "\\n";
      } else if (text[i] == '\t') {
        result += "\\t";
      } else if (text[i] == '\r') {
        result += "\\r";
      } else if (code < 0x20 || code == 0x7F) {
        result += fmt::format("\\x{:02x}", code);
      } else {
        result += text[i];
      }
      ++i;
      continue;
    }
    // Only whole, valid UTF-8 reaches the terminal: a stray byte could complete a sequence
    // with the next cell's bytes, and the C1 controls (U+0080-U+009F, CSI among them) act
    // like escapes on many terminals. Each such byte is shown as \xNN instead.
    const std::size_t length = utf8_sequence_length(text.substr(i));
    const bool c1_control = length == 2 && code == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;
    if (length == 0 || c1_control) {
      result += fmt::format("\\x{:02x}", code);
      ++i;
      continue;
    }
    result.append(text.substr(i, length));
    i += length;
  }
  return result;
}

/// A plain decimal number ("42", "-1500000", "0.25"): the one kind of field starting with
/// "-" that a spreadsheet cannot take for a formula.
bool is_plain_number(std::string_view text) {
  std::size_t i = text.starts_with('-') ? 1 : 0;
  const std::size_t digits_start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == digits_start) return false;
  if (i < text.size() && text[i] == '.') {
    const std::size_t fraction_start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == fraction_start) return false;
  }
  return i == text.size();
}

}  // namespace

Cell::Cell(std::string text, Tone tone)
    : text_(std::move(text)), shown_size_(static_cast<std::uint32_t>(text_.size())), tone_(tone) {}
Cell::Cell(const char* text) : Cell(std::string(text)) {}
Cell::Cell(std::string_view shown, std::string_view value, Tone tone)
    : text_(shown), shown_size_(static_cast<std::uint32_t>(shown.size())), same_(shown == value), tone_(tone) {
  if (!same_) text_.append(value);
}

void Cell::set_shown(std::string shown) {
  if (shown == this->shown()) return;
  // The value stays as given, whatever the shown text became.
  const std::string value(this->value());
  shown_size_ = static_cast<std::uint32_t>(shown.size());
  same_ = false;
  text_ = std::move(shown);
  text_.append(value);
}

Column::Column(std::string header_text) : header(std::move(header_text)) {}
Column::Column(const char* header_text) : header(header_text) {}
Column::Column(std::string header_text, std::string field_name, Align alignment)
    : header(std::move(header_text)), field(std::move(field_name)), align(alignment) {}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {
  // Headers are ours today, but a key/value block may take a key from an event.
  for (Column& column : columns_) column.header = printable(column.header);
}

void Table::add_row(std::vector<Cell> cells) {
  // The raw value stays as given: print_csv escapes it its own way (csv_field).
  for (Cell& cell : cells) cell.set_shown(printable(cell.shown()));
  rows_.push_back({std::move(cells), false});
}

void Table::add_detail_line(std::string line) {
  // One row is one line: a newline in it is escaped (callers split text with printable_lines).
  // Backtraces are often tab-indented; "\t" escapes would be harder to read than spaces.
  std::string expanded;
  for (const char byte : line) expanded += byte == '\t' ? std::string(4, ' ') : std::string(1, byte);
  std::string shown = printable(expanded);
  shown.erase(shown.find_last_not_of(' ') + 1);
  rows_.push_back({{Cell(std::move(shown))}, true});
}

void Table::print(std::ostream& out, const TableStyle& style) const {
  // The columns the table shows, by index: all but the CSV-only ones, and any cells beyond
  // the columns (key/value blocks).
  std::size_t cell_count = columns_.size();
  for (const auto& row : rows_) {
    if (!row.is_detail) cell_count = std::max(cell_count, row.cells.size());
  }
  std::vector<std::size_t> visible;
  std::vector<Align> alignment;
  for (std::size_t column = 0; column < cell_count; ++column) {
    if (column < columns_.size() && !in_table(columns_[column])) continue;
    visible.push_back(column);
    alignment.push_back(column < columns_.size() ? columns_[column].align : Align::left);
  }
  std::vector<Cell> header_cells;
  for (const Column& column : columns_) header_cells.emplace_back(column.header);

  std::vector<std::size_t> widths(visible.size(), 0);
  const auto measure = [&](const std::vector<Cell>& cells) {
    for (std::size_t shown = 0; shown < visible.size() && visible[shown] < cells.size(); ++shown) {
      widths[shown] = std::max(widths[shown], display_width(cells[visible[shown]].shown()));
    }
  };
  measure(header_cells);
  for (const auto& row : rows_) {
    if (!row.is_detail) measure(row.cells);
  }

  const auto print_row = [&](const std::vector<Cell>& cells, bool colour) {
    // The last non-empty cell ends the line, so no row carries trailing blanks.
    std::size_t used = 0;
    for (std::size_t shown = 0; shown < visible.size() && visible[shown] < cells.size(); ++shown) {
      if (!cells[visible[shown]].shown().empty()) used = shown + 1;
    }
    for (std::size_t shown = 0; shown < used; ++shown) {
      if (shown > 0) out << "  ";
      const bool last = shown + 1 == used;
      print_padded(out, cells[visible[shown]], widths[shown], alignment[shown], colour,
                   !(last && alignment[shown] == Align::left));
    }
    out << '\n';
  };
  if (!columns_.empty() && style.header) print_row(header_cells, false);
  for (const auto& row : rows_) {
    if (row.is_detail) {
      out << row.cells.front().shown() << '\n';
    } else {
      print_row(row.cells, style.colour);
    }
  }
}

void Table::print_csv(std::ostream& out, bool header) const {
  std::vector<std::size_t> fields;
  for (std::size_t column = 0; column < columns_.size(); ++column) {
    if (!columns_[column].field.empty()) fields.push_back(column);
  }
  if (fields.empty()) throw std::logic_error("this table has no CSV form (no column has a field name)");
  std::vector<std::string> record;
  if (header) {
    for (const std::size_t column : fields) record.push_back(columns_[column].field);
    write_csv_record(out, record);
  }
  for (const auto& row : rows_) {
    if (row.is_detail) continue;
    record.clear();
    for (const std::size_t column : fields) {
      record.emplace_back(column < row.cells.size() ? row.cells[column].value() : std::string_view());
    }
    write_csv_record(out, record);
  }
}

std::string csv_field(std::string_view value) {
  std::string field = escape_for_terminal(value, true);
  static constexpr std::string_view formula_starts = "=+-@\t\r";
  if (!field.empty() && formula_starts.find(field.front()) != std::string_view::npos && !is_plain_number(field)) {
    field.insert(field.begin(), '\'');
  }
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string quoted = "\"";
  for (const char byte : field) {
    quoted += byte;
    if (byte == '"') quoted += '"';
  }
  quoted += '"';
  return quoted;
}

void write_csv_record(std::ostream& out, const std::vector<std::string>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out << ',';
    out << csv_field(fields[i]);
  }
  out << '\n';
}

bool use_colour(ColourMode mode, bool is_terminal, const char* no_color, const char* term) {
  switch (mode) {
    case ColourMode::always: return true;
    case ColourMode::never: return false;
    case ColourMode::automatic: break;
  }
  if (!is_terminal) return false;
  if (no_color != nullptr && *no_color != '\0') return false;
  // A terminal that does not say what it is, or says it is dumb, may not know SGR sequences.
  return term != nullptr && *term != '\0' && std::string_view(term) != "dumb";
}

std::size_t display_width(std::string_view text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++width;
      ++i;
      continue;
    }
    const std::size_t length = utf8_sequence_length(text.substr(i));
    if (length == 0) {  // a stray byte: printable() shows it as one \xNN; count it as a column
      ++width;
      ++i;
      continue;
    }
    char32_t code = lead & (0xFF >> (length + 1));
    for (std::size_t k = 1; k < length; ++k) code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    width += code_point_width(code);
    i += length;
  }
  return width;
}

std::string printable(std::string_view text) { return escape_for_terminal(text, false); }

std::vector<std::string> printable_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  do {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Backtraces are often tab-indented; "\t" escapes would be harder to read than spaces.
    std::string expanded;
    for (const char byte : line) expanded += byte == '\t' ? std::string(4, ' ') : std::string(1, byte);
    std::string shown = printable(expanded);
    shown.erase(shown.find_last_not_of(' ') + 1);
    lines.push_back(std::move(shown));
    begin = end + 1;
  } while (begin < text.size());
  return lines;
}

void print_json_line(std::ostream& out, const nlohmann::ordered_json& value) {
  out << value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

}  // namespace jobtrail::view
