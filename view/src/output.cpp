#include "jobtrail/view/output.h"

#include <algorithm>
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
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(),
                                                [](char byte) { return !is_utf8_continuation(byte); }));
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

void print_json_line(std::ostream& out, const nlohmann::ordered_json& value) {
  out << value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

}  // namespace jobtrail::view
