/*
 * core.xml: S3/OSS XML responses into a generic Lua element tree (libxml2),
 * and text escaping for request bodies.
 *
 *   core.xml.parse(s [, opts]) -> root | nil, err
 *     element = { name = <local name>, ns = <namespace URI or nil>,
 *                 attr = { [<local name>] = value } or nil,
 *                 text = <text> (leaf elements only),
 *                 [1..n] = child elements in document order }
 *     opts.max_size (bytes, default core.xml.default_max_size),
 *     opts.max_depth (elements, default core.xml.default_max_depth, at most 256),
 *     opts.max_elements (elements in all, default core.xml.default_max_elements).
 *   core.xml.escape(s) -> escaped text (see os_xml.h for the rules)
 *
 * Misuse raises (osl_misuse). A document that cannot be accepted returns
 * nil, err with code MalformedResponse: retryable when it is not
 * well-formed, empty or has no root (a body cut short or damaged on the way
 * may parse on another attempt), not retryable when it breaks a limit or
 * has a DOCTYPE (the same answer would come again).
 *
 * No Lua error may longjmp through libxml2 frames, so libxml2 runs to
 * completion on a document before any Lua table is built, and no Lua API is
 * called from a libxml2 callback. The parser context and the document live in
 * a userdata with __gc that sits on the stack while the tree is built, so a
 * memory error while building Lua tables cannot leak them.
 *
 * Documents with more attributes than OS_XML_MAX_ATTRS_PER_ELEMENT in an
 * element or OS_XML_MAX_ATTRS in all are refused before parsing (libxml2's
 * duplicate-attribute check is quadratic; see os_xml.h), and so are those
 * with more elements than opts.max_elements (each costs memory and time
 * out of proportion to its bytes: "<a/>" is 4).
 *
 * Documents with a DOCTYPE are refused outright: S3 and OSS never send one,
 * and refusing it at the first SAX event is the simplest complete defence
 * against external entities (XXE) and entity expansion ("billion laughs").
 * XML_PARSE_NONET forbids network access and entities are never substituted
 * (no XML_PARSE_NOENT, no XML_PARSE_DTDLOAD).
 */
#include "l_compat.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "os_xml.h"

#define XML_DOC_CLASS "objstore.xml.doc"
/* S3/OSS list responses are capped at 1000 entries of at most a few KiB,
 * so a few MiB is the largest real answer; 32 MiB leaves room for odd ones. */
#define XML_DEFAULT_MAX_SIZE (32 * 1024 * 1024)
/* The deepest S3/OSS documents (lifecycle filters) nest about 6 levels. */
#define XML_DEFAULT_MAX_DEPTH 64
/* libxml2 itself stops at 256 levels unless XML_PARSE_HUGE is given. */
#define XML_LIMIT_MAX_DEPTH 256

typedef struct {
  xmlParserCtxtPtr ctxt;
  xmlDocPtr doc;
  int doctype; /* set by the SAX hook when the document has a DOCTYPE */
} xml_doc;

typedef struct {
  int max_depth;
  int restore; /* text holds C0 markers (os_xml.h) to turn back into bytes */
} walk_opts;

static void doc_release(xml_doc *d) {
  if (d->doc != NULL) {
    xmlFreeDoc(d->doc);
    d->doc = NULL;
  }
  if (d->ctxt != NULL) {
    if (d->ctxt->myDoc != NULL) {
      xmlFreeDoc(d->ctxt->myDoc);
      d->ctxt->myDoc = NULL;
    }
    xmlFreeParserCtxt(d->ctxt);
    d->ctxt = NULL;
  }
}

static int doc_gc(lua_State *L) {
  xml_doc *d = (xml_doc *)osl_checkself(L, XML_DOC_CLASS, "core.xml.__gc");
  doc_release(d);
  return 0;
}

/* SAX hook for <!DOCTYPE ...>: stop before any declaration is read. Runs
 * inside libxml2, so it only sets a flag. */
static void reject_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                           const xmlChar *system_id) {
  xmlParserCtxtPtr ctxt = (xmlParserCtxtPtr)ctx;
  xml_doc *d = (xml_doc *)ctxt->_private;
  (void)name;
  (void)external_id;
  (void)system_id;
  d->doctype = 1;
  xmlStopParser(ctxt);
}

/* Per-context structured error sink: libxml2 still records the error in
 * ctxt->lastError, but nothing is printed and no global handler is used. */
static void ignore_error(void *ctx, xmlErrorPtr err) {
  (void)ctx;
  (void)err;
}

/* Pushes nil and a MalformedResponse error; returns 2. */
static int fail(lua_State *L, const char *msg, int retryable) {
  return osl_push_error(L, "MalformedResponse", msg, retryable);
}

/* Appends s[0..n) to b, turning C0 markers back into control bytes. */
static void add_text(luaL_Buffer *b, const char *s, size_t n, int restore) {
  if (!restore) {
    luaL_addlstring(b, s, n);
    return;
  }
  while (n > 0) {
    size_t k = os_xml_c0_find_mark(s, n);
    luaL_addlstring(b, s, k);
    if (k == n) break;
    luaL_addchar(b, (char)((unsigned char)s[k + 3] - 0x80));
    s += k + OS_XML_MARK_LEN;
    n -= k + OS_XML_MARK_LEN;
  }
}

/* Pushes the concatenated text and CDATA of the sibling list starting at
 * first (comments and processing instructions are skipped). */
static void push_content(lua_State *L, xmlNode *first, int restore) {
  xmlNode *c;
  int ntext = 0;
  luaL_Buffer b;
  for (c = first; c != NULL; c = c->next) {
    if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) ntext++;
  }
  if (ntext == 0) {
    lua_pushliteral(L, "");
    return;
  }
  if (ntext == 1 && !restore) {
    for (c = first; c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE; c = c->next) {
    }
    lua_pushstring(L, c->content != NULL ? (const char *)c->content : "");
    return;
  }
  luaL_buffinit(L, &b);
  for (c = first; c != NULL; c = c->next) {
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content != NULL) {
      const char *s = (const char *)c->content;
      add_text(&b, s, strlen(s), restore);
    }
  }
  luaL_pushresult(&b);
}

/* Pushes the element table for el. Returns 0 (with garbage left on the
 * stack for the caller to drop) when the depth limit is exceeded. */
static int push_element(lua_State *L, xmlNode *el, int depth, const walk_opts *o) {
  xmlNode *c;
  int nel = 0, i = 0;
  if (depth > o->max_depth) return 0;
  luaL_checkstack(L, 8, "xml: document nesting too deep for the Lua stack");
  for (c = el->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) nel++;
  }
  lua_createtable(L, nel, 4);
  lua_pushstring(L, (const char *)el->name);
  lua_setfield(L, -2, "name");
  if (el->ns != NULL && el->ns->href != NULL) {
    lua_pushstring(L, (const char *)el->ns->href);
    lua_setfield(L, -2, "ns");
  }
  if (el->properties != NULL) {
    xmlAttr *a;
    lua_newtable(L);
    for (a = el->properties; a != NULL; a = a->next) {
      push_content(L, a->children, o->restore);
      lua_setfield(L, -2, (const char *)a->name);
    }
    lua_setfield(L, -2, "attr");
  }
  if (nel == 0) {
    /* Only leaves carry text: whitespace (or junk, as in some botocore
     * samples) between child elements means nothing in S3/OSS documents. */
    push_content(L, el->children, o->restore);
    lua_setfield(L, -2, "text");
    return 1;
  }
  for (c = el->children; c != NULL; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (!push_element(L, c, depth + 1, o)) return 0;
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* Reads a positive integer option of argument #2 (opts); raises on a wrong
 * type or range. name is "opts.<field>". */
static size_t opt_size(lua_State *L, int idx, const char *field, const char *name, size_t dflt,
                       size_t max) {
  size_t v = dflt;
  lua_getfield(L, idx, field);
  if (!lua_isnil(L, -1)) {
    lua_Number n;
    if (lua_type(L, -1) != LUA_TNUMBER)
      osl_misuse(L, "core.xml.parse", 2, name, "must be a number, got %s", luaL_typename(L, -1));
    n = lua_tonumber(L, -1);
    if (!(n >= 1 && n <= (lua_Number)max) || n != (lua_Number)(size_t)n)
      osl_misuse(L, "core.xml.parse", 2, name, "must be an integer from 1 to %d", (int)max);
    v = (size_t)n;
  }
  lua_pop(L, 1);
  return v;
}

static int l_parse(lua_State *L) {
  size_t n, max_size, max_elements, src_len;
  const char *s, *src;
  walk_opts wo;
  xml_doc *d;
  xmlNode *root;
  int mode;
  size_t out_len;

  if (lua_type(L, 1) != LUA_TSTRING) {
    return osl_misuse(L, "core.xml.parse", 1, "s", "XML document string expected, got %s",
                      luaL_typename(L, 1));
  }
  s = lua_tolstring(L, 1, &n);
  max_size = XML_DEFAULT_MAX_SIZE;
  max_elements = OS_XML_MAX_ELEMENTS;
  wo.max_depth = XML_DEFAULT_MAX_DEPTH;
  if (!lua_isnoneornil(L, 2)) {
    osl_checktype(L, 2, LUA_TTABLE, "core.xml.parse", 2, "opts");
    /* libxml2 takes the size as an int; leave room for the C0 rewrite. */
    max_size = opt_size(L, 2, "max_size", "opts.max_size", max_size, INT_MAX / 4);
    wo.max_depth = (int)opt_size(L, 2, "max_depth", "opts.max_depth", (size_t)wo.max_depth,
                                 XML_LIMIT_MAX_DEPTH);
    max_elements =
        opt_size(L, 2, "max_elements", "opts.max_elements", max_elements, (size_t)INT_MAX);
  }
  lua_settop(L, 1);

  if (n > max_size) {
    char msg[128];
    snprintf(msg, sizeof msg, "xml: document is %zu bytes, over the limit of %zu", n, max_size);
    return fail(L, msg, 0);
  }
  if (n == 0) return fail(L, "xml: empty document", 1);

  {
    size_t per_element, total, elements;
    int over = os_xml_attr_scan(s, n, OS_XML_MAX_ATTRS_PER_ELEMENT, OS_XML_MAX_ATTRS, max_elements,
                                &per_element, &total, &elements);
    if (over == 2) {
      char msg[160];
      snprintf(msg, sizeof msg, "xml: more than %zu elements in the document: not an S3/OSS answer",
               max_elements);
      return fail(L, msg, 0);
    }
    if (over != 0) {
      char msg[160];
      snprintf(msg, sizeof msg,
               "xml: too many attributes (over %d in an element or %d in the document): "
               "not an S3/OSS answer",
               OS_XML_MAX_ATTRS_PER_ELEMENT, OS_XML_MAX_ATTRS);
      return fail(L, msg, 0);
    }
  }

  src = s;
  src_len = n;
  mode = os_xml_c0_scan(s, n, &out_len);
  wo.restore = mode == OS_XML_C0_REWRITE;
  if (wo.restore) {
    /* Scratch copy in a userdata: nothing to free if a later call raises. */
    char *buf = (char *)osl_newuserdata(L, out_len);
    src_len = os_xml_c0_rewrite(s, n, buf);
    src = buf;
  }

  d = (xml_doc *)osl_newuserdata(L, sizeof *d);
  memset(d, 0, sizeof *d);
  luaL_getmetatable(L, XML_DOC_CLASS);
  lua_setmetatable(L, -2);

  /* From here to the end of xmlParseDocument no Lua API is called. */
  d->ctxt = xmlCreateMemoryParserCtxt(src, (int)src_len);
  if (d->ctxt == NULL)
    return osl_push_error(L, "OutOfMemory", "xml: cannot create a parser (out of memory)", 0);
  d->ctxt->_private = d;
  xmlCtxtUseOptions(d->ctxt,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
  /* Independent of libxml2's process-wide defaults, which other code in the
   * process may have changed: no DTD loading, no entity substitution, no
   * validation, and whitespace inside leaves is kept. */
  d->ctxt->loadsubset = 0;
  d->ctxt->replaceEntities = 0;
  d->ctxt->validate = 0;
  d->ctxt->keepBlanks = 1;
  d->ctxt->sax->ignorableWhitespace = d->ctxt->sax->characters;
  d->ctxt->sax->internalSubset = reject_doctype;
  d->ctxt->sax->externalSubset = NULL;
  d->ctxt->sax->serror = ignore_error;
  xmlParseDocument(d->ctxt);
  d->doc = d->ctxt->myDoc;
  d->ctxt->myDoc = NULL;

  if (d->doctype) {
    doc_release(d);
    return fail(L, "xml: DOCTYPE declarations are not accepted (no DTDs, no entities)", 0);
  }
  if (!d->ctxt->wellFormed || d->doc == NULL) {
    char msg[256];
    xmlErrorPtr e = xmlCtxtGetLastError(d->ctxt);
    if (e != NULL && e->message != NULL) {
      size_t len;
      snprintf(msg, sizeof msg, "xml: malformed document (line %d, column %d): %s", e->line,
               e->int2, e->message);
      len = strlen(msg);
      while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) msg[--len] = '\0';
    } else {
      snprintf(msg, sizeof msg, "xml: malformed document");
    }
    doc_release(d);
    return fail(L, msg, 1);
  }
  root = xmlDocGetRootElement(d->doc);
  if (root == NULL) {
    doc_release(d);
    return fail(L, "xml: document has no root element", 1);
  }
  if (!push_element(L, root, 1, &wo)) {
    char msg[96];
    doc_release(d);
    snprintf(msg, sizeof msg, "xml: elements nest deeper than the limit of %d", wo.max_depth);
    return fail(L, msg, 0);
  }
  doc_release(d);
  return 1;
}

static int l_escape(lua_State *L) {
  size_t n, len, bad = 0;
  const char *s;
  char *buf;
  if (lua_type(L, 1) != LUA_TSTRING)
    return osl_misuse(L, "core.xml.escape", 1, "s", "string expected, got %s", luaL_typename(L, 1));
  s = lua_tolstring(L, 1, &n);
  len = os_xml_escape(s, n, NULL, &bad);
  if (len == (size_t)-1) {
    return osl_misuse(L, "core.xml.escape", 1, "s",
                      "not representable in XML 1.0 at byte %d (NUL, invalid UTF-8, "
                      "a surrogate, U+FFFE or U+FFFF)",
                      (int)bad + 1);
  }
  /* Every escape is longer than what it replaces: same length, same text. */
  if (len == n) {
    lua_settop(L, 1);
    return 1;
  }
  buf = (char *)osl_newuserdata(L, len);
  os_xml_escape(s, n, buf, NULL);
  lua_pushlstring(L, buf, len);
  return 1;
}

int osl_open_xml(lua_State *L) {
  static const luaL_Reg doc_methods[] = {{"__gc", doc_gc}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"parse", l_parse}, {"escape", l_escape}, {NULL, NULL}};
  /* Initialise libxml2 once from the thread that loads the module. */
  xmlInitParser();
  osl_newclass(L, XML_DOC_CLASS, doc_methods);
  osl_newlib(L, funcs);
  lua_pushinteger(L, XML_DEFAULT_MAX_SIZE);
  lua_setfield(L, -2, "default_max_size");
  lua_pushinteger(L, XML_DEFAULT_MAX_DEPTH);
  lua_setfield(L, -2, "default_max_depth");
  lua_pushinteger(L, OS_XML_MAX_ELEMENTS);
  lua_setfield(L, -2, "default_max_elements");
  lua_pushstring(L, xmlParserVersion);
  lua_setfield(L, -2, "libxml2_version");
  return 1;
}
