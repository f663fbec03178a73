// The table renderer with hostile bytes: what reaches a terminal is whole UTF-8 without
// controls. Found by tests/fuzz/fuzz_table (regressions/table/).

#include <sstream>

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
