/* ui_page.h - the live cluster page (server/ui/cluster.html), embedded in
 * zraftd at build time (server/ui/embed.cmake) and served at / and /ui. */
#ifndef ZRAFT_SERVER_UI_PAGE_H
#define ZRAFT_SERVER_UI_PAGE_H

#include <stddef.h>

/* The page's bytes (ui_page_len of them, then a NUL), static. */
extern const unsigned char ui_page_html[];
extern const size_t ui_page_len;

#endif
