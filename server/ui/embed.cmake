# embed.cmake - turns the cluster page (cluster.html) into a C source that
# zraftd links: ui_page_html[] and ui_page_len (server/ui_page.h).
#   cmake -DIN=cluster.html -DOUT=ui_page.c -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# 16 bytes a line keeps the generated file readable by tools.
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT}
  "/* ui_page.c - generated from server/ui/cluster.html by embed.cmake. */\n"
  "#include <stddef.h>\n\n#include \"ui_page.h\"\n\n"
  "const unsigned char ui_page_html[] = {\n${bytes}0x00};\n"
  "const size_t ui_page_len = ${len};\n")
