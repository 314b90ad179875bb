/*
 * Pure-C helpers for the XML binding (l_xml.c): no Lua, no libxml2.
 *
 * 1. C0 control characters. XML 1.0 cannot carry U+0001..U+001F (other than
 *    TAB, LF, CR) at all, not even as character references, yet S3 writes
 *    keys holding them as "&#x1;" in its responses when encoding-type=url was
 *    not requested, and some servers send the raw bytes. A conforming parser
 *    (libxml2 included) rejects the whole document. os_xml_c0_* rewrites such
 *    references and bytes into private-use "marker" code points
 *    U+10FF01..U+10FF1F before parsing, and os_xml_c0_find_mark lets the
 *    binding turn markers back into the control bytes when it copies text
 *    out. Inputs that already contain a marker code point are not rewritten
 *    (the mapping would not be reversible), so they parse strictly.
 *
 * 2. Escaping text for request bodies: os_xml_escape.
 *
 * 3. Attribute counting before parsing: os_xml_attr_scan. libxml2 checks
 *    an element's attributes for duplicates pairwise, O(n^2): 80,000
 *    attributes in under 1 MB cost seconds of CPU. S3 and OSS answers carry
 *    a handful (namespace declarations, xsi:type in ACLs), so documents with
 *    many are refused before libxml2 sees them.
 */
#ifndef OBJSTORE_OS_XML_H
#define OBJSTORE_OS_XML_H

#include <stddef.h>

/* A marker is 4 bytes: F4 8F BC (0x80 + control byte). */
#define OS_XML_MARK_LEN 4

enum {
  OS_XML_C0_NONE = 0,    /* nothing to rewrite: parse the input as it is */
  OS_XML_C0_REWRITE = 1, /* rewrite needed; *out_len is the rewritten size */
  OS_XML_C0_CONFLICT = 2 /* input already holds marker code points: parse strictly */
};

/* Scans s[0..n) and says whether a rewrite is needed and how long it will be.
 * References inside CDATA sections, comments and processing instructions are
 * literal text there and are left alone; raw control bytes are mapped
 * everywhere. */
int os_xml_c0_scan(const char *s, size_t n, size_t *out_len);

/* Writes the rewritten document into out (room for the *out_len given by
 * os_xml_c0_scan) and returns the number of bytes written. */
size_t os_xml_c0_rewrite(const char *s, size_t n, char *out);

/* Offset of the first marker in s[0..n), or n if there is none. The control
 * byte it stands for is (unsigned char)s[off + 3] - 0x80. */
size_t os_xml_c0_find_mark(const char *s, size_t n);

/* Escapes s[0..n) (UTF-8) as XML character data that is also safe inside a
 * double- or single-quoted attribute value:
 *   & < > " '           -> &amp; &lt; &gt; &quot; &apos;
 *   TAB LF CR            -> &#x9; &#xA; &#xD; (a parser would normalise the raw bytes)
 *   U+0001..U+001F       -> &#xN; (what S3 writes and the OSS SDKs send)
 *   U+007F..U+009F, U+2028 -> &#xN; (legal but rewritten by XML 1.1 line-end rules)
 * With out == NULL only measures. Returns the escaped length, or (size_t)-1
 * when s cannot be written as XML at all (NUL, invalid UTF-8, a surrogate,
 * U+FFFE/U+FFFF); then *bad_off is the offending byte offset. */
size_t os_xml_escape(const char *s, size_t n, char *out, size_t *bad_off);

/* Attribute limits of os_xml_attr_scan as the binding applies them. */
#define OS_XML_MAX_ATTRS_PER_ELEMENT 64
#define OS_XML_MAX_ATTRS 4096
/* Elements a document may hold (the binding's default; opts.max_elements).
 * Every element costs libxml2 a node and the binding a Lua table, some 300
 * bytes in all: 8 million "<a/>" in 32 MiB grew a client by 1.4 GB and
 * took 7.7 s of CPU. The largest S3/OSS pages (1000 versions of about a
 * dozen elements each) hold some 15,000; ListBuckets without pagination
 * about 3 per bucket. */
#define OS_XML_MAX_ELEMENTS 250000

/* Counts the attributes and the elements of s[0..n) in one linear pass (an
 * '=' outside quotes inside a start tag; a start tag; comments, CDATA
 * sections, processing instructions and the DOCTYPE are skipped). Returns 0
 * when no element has more than max_per_element attributes, the document no
 * more than max_total attributes and no more than max_elements elements;
 * else 1 for too many attributes, 2 for too many elements (at the first
 * excess; *per_element, *total and *elements say how many were counted by
 * then). Malformed input is scanned as well as it goes: libxml2 judges
 * well-formedness afterwards. */
int os_xml_attr_scan(const char *s, size_t n, size_t max_per_element, size_t max_total,
                     size_t max_elements, size_t *per_element, size_t *total, size_t *elements);

#endif
