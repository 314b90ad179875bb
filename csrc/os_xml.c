/* Pure-C helpers for the XML binding; see os_xml.h. */
#include "os_xml.h"

#include <string.h>

#include "os_encode.h"

/* Control bytes XML 1.0 has no place for (TAB, LF and CR are fine). */
static int c0_forbidden(unsigned v) {
  return v >= 0x01 && v <= 0x1F && v != 0x09 && v != 0x0A && v != 0x0D;
}

static int is_mark(const unsigned char *p, size_t avail) {
  return avail >= OS_XML_MARK_LEN && p[0] == 0xF4 && p[1] == 0x8F && p[2] == 0xBC && p[3] >= 0x80 &&
         p[3] <= 0x9F;
}

static int starts_with(const char *s, size_t n, const char *lit) {
  size_t k = strlen(lit);
  return n >= k && memcmp(s, lit, k) == 0;
}

static int digit_value(char c, int hex) {
  if (c >= '0' && c <= '9') return c - '0';
  if (hex && c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (hex && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* s[0..n) starts with "&#". Returns the length of a character reference to a
 * forbidden control character (storing it in *val), else 0. More than 8
 * digits is left for libxml2 to judge, which also keeps v from overflowing. */
static size_t forbidden_ref(const char *s, size_t n, unsigned *val) {
  size_t j = 2;
  int hex = 0, digits = 0;
  unsigned v = 0;
  if (j < n && s[j] == 'x') { /* XML spells hex references with a lowercase x only */
    hex = 1;
    j++;
  }
  for (; j < n && digits < 8; j++, digits++) {
    int d = digit_value(s[j], hex);
    if (d < 0) break;
    v = v * (hex ? 16u : 10u) + (unsigned)d;
  }
  if (digits == 0 || j >= n || s[j] != ';' || !c0_forbidden(v)) return 0;
  *val = v;
  return j + 1;
}

enum c0_state { ST_MARKUP, ST_CDATA, ST_COMMENT, ST_PI };

/* One walk serves both measuring (out == NULL) and writing. */
static size_t c0_walk(const char *s, size_t n, char *out, size_t *subs, int *conflict) {
  size_t i = 0, o = 0;
  enum c0_state st = ST_MARKUP;
  *subs = 0;
  *conflict = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    size_t copy = 1;
    unsigned ctl = 0;
    size_t consumed = 0;

    if (c0_forbidden(c)) {
      ctl = c;
      consumed = 1;
    } else if (c == 0xF4 && is_mark((const unsigned char *)s + i, n - i)) {
      *conflict = 1;
    } else if (st == ST_MARKUP) {
      if (c == '&' && i + 1 < n && s[i + 1] == '#') {
        consumed = forbidden_ref(s + i, n - i, &ctl);
      } else if (c == '<') {
        if (starts_with(s + i, n - i, "<![CDATA[")) {
          st = ST_CDATA;
          copy = 9;
        } else if (starts_with(s + i, n - i, "<!--")) {
          st = ST_COMMENT;
          copy = 4;
        } else if (starts_with(s + i, n - i, "<?")) {
          st = ST_PI;
          copy = 2;
        }
      }
    } else if (st == ST_CDATA && starts_with(s + i, n - i, "]]>")) {
      st = ST_MARKUP;
      copy = 3;
    } else if (st == ST_COMMENT && starts_with(s + i, n - i, "-->")) {
      st = ST_MARKUP;
      copy = 3;
    } else if (st == ST_PI && starts_with(s + i, n - i, "?>")) {
      st = ST_MARKUP;
      copy = 2;
    }

    if (consumed > 0) {
      if (out != NULL) {
        out[o] = (char)0xF4;
        out[o + 1] = (char)0x8F;
        out[o + 2] = (char)0xBC;
        out[o + 3] = (char)(0x80 + ctl);
      }
      o += OS_XML_MARK_LEN;
      i += consumed;
      (*subs)++;
    } else {
      if (out != NULL) memcpy(out + o, s + i, copy);
      o += copy;
      i += copy;
    }
  }
  return o;
}

int os_xml_c0_scan(const char *s, size_t n, size_t *out_len) {
  size_t subs, len;
  int conflict;
  *out_len = n;
  /* The byte-level rewrite assumes an ASCII-compatible encoding; UTF-16/32
   * documents (a BOM or NUL bytes up front) are left to libxml2 as they are. */
  if (n >= 2 && (((unsigned char)s[0] == 0xFE && (unsigned char)s[1] == 0xFF) ||
                 ((unsigned char)s[0] == 0xFF && (unsigned char)s[1] == 0xFE))) {
    return OS_XML_C0_NONE;
  }
  if (memchr(s, 0, n < 4 ? n : 4) != NULL) return OS_XML_C0_NONE;
  len = c0_walk(s, n, NULL, &subs, &conflict);
  if (conflict) return OS_XML_C0_CONFLICT;
  if (subs == 0) return OS_XML_C0_NONE;
  *out_len = len;
  return OS_XML_C0_REWRITE;
}

size_t os_xml_c0_rewrite(const char *s, size_t n, char *out) {
  size_t subs;
  int conflict;
  return c0_walk(s, n, out, &subs, &conflict);
}

size_t os_xml_c0_find_mark(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    const unsigned char *hit = memchr(p + i, 0xF4, n - i);
    if (hit == NULL) return n;
    i = (size_t)(hit - p);
    if (is_mark(hit, n - i) && hit[3] != 0x80) return i;
    i++;
  }
  return n;
}

/* Writes "&#xH;" for v (uppercase hex) into out when non-NULL; returns its length. */
static size_t char_ref(unsigned v, char *out) {
  char digits[8];
  size_t nd = 0, len;
  do {
    digits[nd++] = "0123456789ABCDEF"[v & 0xF];
    v >>= 4;
  } while (v != 0 && nd < sizeof digits);
  len = 3 + nd + 1;
  if (out != NULL) {
    size_t k;
    out[0] = '&';
    out[1] = '#';
    out[2] = 'x';
    for (k = 0; k < nd; k++) out[3 + k] = digits[nd - 1 - k];
    out[3 + nd] = ';';
  }
  return len;
}

size_t os_xml_escape(const char *s, size_t n, char *out, size_t *bad_off) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < n) {
    unsigned cp;
    size_t len = os_utf8_decode(p + i, n - i, &cp);
    const char *ent = NULL;
    if (len == 0 || cp == 0 || cp == 0xFFFE || cp == 0xFFFF) {
      if (bad_off != NULL) *bad_off = i;
      return (size_t)-1;
    }
    switch (cp) {
      case '&':
        ent = "&amp;";
        break;
      case '<':
        ent = "&lt;";
        break;
      case '>':
        ent = "&gt;";
        break;
      case '"':
        ent = "&quot;";
        break;
      case '\'':
        ent = "&apos;";
        break;
      default:
        break;
    }
    if (ent != NULL) {
      size_t k = strlen(ent);
      if (out != NULL) memcpy(out + o, ent, k);
      o += k;
    } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028) {
      o += char_ref(cp, out != NULL ? out + o : NULL);
    } else {
      if (out != NULL) memcpy(out + o, p + i, len);
      o += len;
    }
    i += len;
  }
  return o;
}

/* Offset just past the first occurrence of lit in s[from..n), or n. */
static size_t skip_past(const char *s, size_t n, size_t from, const char *lit) {
  size_t ll = strlen(lit);
  for (size_t i = from; i + ll <= n; i++) {
    if (s[i] == lit[0] && memcmp(s + i, lit, ll) == 0) return i + ll;
  }
  return n;
}

int os_xml_attr_scan(const char *s, size_t n, size_t max_per_element, size_t max_total,
                     size_t max_elements, size_t *per_element, size_t *total, size_t *elements) {
  size_t i = 0, count = 0, in_elem = 0;
  *per_element = 0;
  *total = 0;
  *elements = 0;
  while (i < n) {
    if (s[i] != '<') {
      i++;
      continue;
    }
    if (starts_with(s + i, n - i, "<!--")) {
      i = skip_past(s, n, i + 4, "-->");
      continue;
    }
    if (starts_with(s + i, n - i, "<![CDATA[")) {
      i = skip_past(s, n, i + 9, "]]>");
      continue;
    }
    if (i + 1 < n && (s[i + 1] == '?' || s[i + 1] == '!' || s[i + 1] == '/')) {
      /* PI, DOCTYPE (refused later anyway) or end tag: no attributes. */
      i = skip_past(s, n, i + 2, s[i + 1] == '?' ? "?>" : ">");
      continue;
    }
    /* A start tag: '=' outside quoted values up to its '>'. */
    if (++*elements > max_elements) return 2;
    in_elem = 0;
    i++;
    while (i < n && s[i] != '>') {
      char c = s[i];
      if (c == '"' || c == '\'') {
        const char *q = memchr(s + i + 1, c, n - i - 1);
        i = q ? (size_t)(q - s) + 1 : n;
        continue;
      }
      if (c == '=') {
        in_elem++;
        count++;
        if (in_elem > *per_element) *per_element = in_elem;
        *total = count;
        if (in_elem > max_per_element || count > max_total) return 1;
      }
      i++;
    }
    i++;
  }
  return 0;
}
