/*
 * libFuzzer target: the XML response path of core.xml.parse without Lua.
 * Mirrors l_xml.c: the size limit, the C0 scan and rewrite (os_xml.h), a
 * libxml2 parse with the same options and hooks, and a tree walk that stops
 * at the depth limit. Also checks os_xml_escape: measuring and writing agree,
 * and escaped text always parses back as one element.
 */
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../os_xml.h"

#define FUZZ_MAX_SIZE (1024 * 1024) /* stands for opts.max_size */
#define FUZZ_MAX_DEPTH 64           /* XML_DEFAULT_MAX_DEPTH */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int doctype_seen;

static void reject_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys) {
  (void)name;
  (void)ext;
  (void)sys;
  doctype_seen = 1;
  xmlStopParser((xmlParserCtxtPtr)ctx);
}

static void ignore_error(void *ctx, xmlErrorPtr err) {
  (void)ctx;
  (void)err;
}

/* Returns 0 when the depth limit is exceeded, as push_element does. */
static int walk(xmlNode *el, int depth, int restore, size_t *nodes) {
  if (depth > FUZZ_MAX_DEPTH) return 0;
  for (xmlAttr *a = el->properties; a != NULL; a = a->next) (*nodes)++;
  for (xmlNode *c = el->children; c != NULL; c = c->next) {
    (*nodes)++;
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content && restore) {
      const char *t = (const char *)c->content;
      size_t n = strlen(t), off = 0;
      while ((off += os_xml_c0_find_mark(t + off, n - off)) < n) {
        if (off + OS_XML_MARK_LEN > n) abort();
        off += OS_XML_MARK_LEN;
      }
    }
    if (c->type == XML_ELEMENT_NODE && !walk(c, depth + 1, restore, nodes)) return 0;
  }
  return 1;
}

/* Parses src[0..n) as l_parse does; returns 1 when well-formed and within the limits. */
static int parse(const char *s, size_t n) {
  size_t out_len = 0, nodes = 0;
  const char *src = s;
  size_t src_len = n;
  char *buf = NULL;
  int ok = 0;
  if (n == 0 || n > FUZZ_MAX_SIZE) return 0;
  int mode = os_xml_c0_scan(s, n, &out_len);
  if (mode == OS_XML_C0_REWRITE) {
    buf = malloc(out_len ? out_len : 1);
    if (buf == NULL) return 0;
    src_len = os_xml_c0_rewrite(s, n, buf);
    if (src_len != out_len) abort(); /* scan and rewrite must agree */
    src = buf;
  }
  xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(src, (int)src_len);
  if (ctxt == NULL) {
    free(buf);
    return 0;
  }
  xmlCtxtUseOptions(ctxt,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
  ctxt->loadsubset = 0;
  ctxt->replaceEntities = 0;
  ctxt->validate = 0;
  ctxt->keepBlanks = 1;
  ctxt->sax->ignorableWhitespace = ctxt->sax->characters;
  ctxt->sax->internalSubset = reject_doctype;
  ctxt->sax->externalSubset = NULL;
  ctxt->sax->serror = ignore_error;
  doctype_seen = 0;
  xmlParseDocument(ctxt);
  xmlDocPtr doc = ctxt->myDoc;
  ctxt->myDoc = NULL;
  if (!doctype_seen && ctxt->wellFormed && doc != NULL) {
    xmlNode *root = xmlDocGetRootElement(doc);
    ok = root != NULL && walk(root, 1, mode == OS_XML_C0_REWRITE, &nodes);
  }
  if (doc != NULL) xmlFreeDoc(doc);
  xmlFreeParserCtxt(ctxt);
  free(buf);
  return ok;
}

static void check_escape(const char *s, size_t n) {
  size_t bad = 0, bad2 = 0;
  size_t len = os_xml_escape(s, n, NULL, &bad);
  if (len == (size_t)-1) {
    if (bad >= n) abort();
    return;
  }
  static const char open[] = "<a b='", mid[] = "'>", close[] = "</a>";
  size_t total = sizeof open - 1 + len + sizeof mid - 1 + len + sizeof close - 1;
  char *doc = malloc(total + 1);
  if (doc == NULL) return;
  char *p = doc;
  memcpy(p, open, sizeof open - 1), p += sizeof open - 1;
  size_t w = os_xml_escape(s, n, p, &bad2);
  if (w != len) abort(); /* measuring and writing agree */
  p += w;
  memcpy(p, mid, sizeof mid - 1), p += sizeof mid - 1;
  p += os_xml_escape(s, n, p, &bad2);
  memcpy(p, close, sizeof close - 1), p += sizeof close - 1;
  if ((size_t)(p - doc) != total) abort();
  /* Text that os_xml_escape accepts must make a well-formed document, unless
   * it already holds marker code points (then the strict parse may refuse). */
  size_t ignored;
  if (os_xml_c0_scan(s, n, &ignored) != OS_XML_C0_CONFLICT && !parse(doc, total)) abort();
  free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  (void)parse(s, size);
  if (size <= 4096) check_escape(s, size);
  return 0;
}
