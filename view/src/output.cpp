#include "jobtrail/view/output.h"

#include <algorithm>
#include <iterator>
#include <ostream>

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

void print_padded(std::ostream& out, const std::string& cell, std::size_t width, Align align) {
  const std::string padding(width - std::min(width, display_width(cell)), ' ');
  if (align == Align::right) {
    out << padding << cell;
  } else {
    out << cell << padding;
  }
}

}  // namespace

Table::Table(std::vector<std::string> headers, std::vector<Align> alignment)
    : headers_(std::move(headers)), alignment_(std::move(alignment)) {
  // Headers are ours today, but a key/value block may take a key from an event.
  for (std::string& header : headers_) header = printable(header);
}

void Table::add_row(std::vector<std::string> cells) {
  for (std::string& cell : cells) cell = printable(cell);
  rows_.push_back({std::move(cells), false});
}

void Table::add_detail_line(std::string line) {
  // One row is one line: a newline in it is escaped (callers split text with printable_lines).
  // Backtraces are often tab-indented; "\t" escapes would be harder to read than spaces.
  std::string expanded;
  for (const char byte : line) expanded += byte == '\t' ? std::string(4, ' ') : std::string(1, byte);
  std::string shown = printable(expanded);
  shown.erase(shown.find_last_not_of(' ') + 1);
  rows_.push_back({{std::move(shown)}, true});
}

void Table::print(std::ostream& out) const {
  std::size_t column_count = headers_.size();
  for (const auto& row : rows_) {
    if (!row.is_detail) column_count = std::max(column_count, row.cells.size());
  }

  std::vector<std::size_t> widths(column_count, 0);
  const auto measure = [&widths](const std::vector<std::string>& row) {
    for (std::size_t column = 0; column < row.size(); ++column) {
      widths[column] = std::max(widths[column], display_width(row[column]));
    }
  };
  measure(headers_);
  for (const auto& row : rows_) {
    if (!row.is_detail) measure(row.cells);
  }

  const auto print_row = [&](const std::vector<std::string>& row) {
    // The last non-empty cell ends the line, so no row carries trailing blanks.
    std::size_t used = row.size();
    while (used > 0 && row[used - 1].empty()) --used;
    for (std::size_t column = 0; column < used; ++column) {
      if (column > 0) out << "  ";
      const Align align = column < alignment_.size() ? alignment_[column] : Align::left;
      const bool last = column + 1 == used;
      if (last && align == Align::left) {
        out << row[column];
      } else {
        print_padded(out, row[column], widths[column], align);
      }
    }
    out << '\n';
  };
  if (!headers_.empty()) print_row(headers_);
  for (const auto& row : rows_) {
    if (row.is_detail) {
      out << row.cells.front() << '\n';
    } else {
      print_row(row.cells);
    }
  }
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

std::string printable(std::string_view text) {
  std::string result;
  result.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto code = static_cast<unsigned char>(text[i]);
    if (code < 0x80) {
      if (text[i] == '\n') {
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
