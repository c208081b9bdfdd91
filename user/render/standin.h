/* Lone surrogates in report strings. A file name that is not UTF-8 is, in
 * Python, a str with surrogate escapes (U+DC80-U+DCFF), which json.dumps
 * writes as "\udcXX"; the symbolizer gives such a code point as its 3-byte
 * form (ED B2 80...), which is not UTF-8, and jansson holds only UTF-8.
 * So report.c puts a surrogate S in as the stand-in U+100000 + S (private
 * use, plane 16), and a real code point of the stand-ins' range, or
 * HK_SI_LITERAL itself, as HK_SI_LITERAL and then it; report_dump.c turns
 * them back into what json.dumps writes. */
#ifndef HAWK_STANDIN_H
#define HAWK_STANDIN_H

#define HK_SI_LO 0x10d800	/* stands for U+D800 */
#define HK_SI_HI 0x10dfff	/* ... for U+DFFF */
#define HK_SI_LITERAL 0x10fffe	/* a noncharacter: the next code point is itself */

#endif
