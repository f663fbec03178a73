#include "output.h"

#include <algorithm>
#include <ostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jobtrail::cli {
namespace {

bool is_utf8_continuation(char byte) { return (static_cast<unsigned char>(byte) & 0xC0) == 0x80; }

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
    : headers_(std::move(headers)), alignment_(std::move(alignment)) {}

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
  for (const char byte : text) {
    const auto code = static_cast<unsigned char>(byte);
    if (byte == '\n') {
      result += "\\n";
    } else if (byte == '\t') {
      result += "\\t";
    } else if (byte == '\r') {
      result += "\\r";
    } else if (code < 0x20 || code == 0x7F) {
      result += fmt::format("\\x{:02x}", code);
    } else {
      result += byte;
    }
  }
  return result;
}

void print_json_line(std::ostream& out, const nlohmann::ordered_json& value) {
  out << value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

}  // namespace jobtrail::cli
