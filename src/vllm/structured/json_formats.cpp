#include "vllm/structured/json_formats.h"

#include <string>

namespace vllm::structured {

namespace {

// Leap years: divisible by 4 and not by 100, or divisible by 400.
#define VLLM_LEAP_YEAR "(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
#define VLLM_FULL_DATE                                                       \
  "(?:\\d{4}-(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])"                    \
  "|\\d{4}-(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)"                              \
  "|\\d{4}-02-(?:0[1-9]|1\\d|2[0-8])"                                        \
  "|" VLLM_LEAP_YEAR "-02-29)"
#define VLLM_FULL_TIME \
  "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:[zZ]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)"
#define VLLM_OCTET "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)"
#define VLLM_IPV4 VLLM_OCTET "(?:\\." VLLM_OCTET "){3}"
#define VLLM_H16 "[0-9a-fA-F]{1,4}"
#define VLLM_LS32 "(?:" VLLM_H16 ":" VLLM_H16 "|" VLLM_IPV4 ")"
#define VLLM_IPV6                                                        \
  "(?:(?:" VLLM_H16 ":){6}" VLLM_LS32                                    \
  "|::(?:" VLLM_H16 ":){5}" VLLM_LS32                                    \
  "|(?:" VLLM_H16 ")?::(?:" VLLM_H16 ":){4}" VLLM_LS32                   \
  "|(?:(?:" VLLM_H16 ":){0,1}" VLLM_H16 ")?::(?:" VLLM_H16 ":){3}" VLLM_LS32 \
  "|(?:(?:" VLLM_H16 ":){0,2}" VLLM_H16 ")?::(?:" VLLM_H16 ":){2}" VLLM_LS32 \
  "|(?:(?:" VLLM_H16 ":){0,3}" VLLM_H16 ")?::" VLLM_H16 ":" VLLM_LS32    \
  "|(?:(?:" VLLM_H16 ":){0,4}" VLLM_H16 ")?::" VLLM_LS32                 \
  "|(?:(?:" VLLM_H16 ":){0,5}" VLLM_H16 ")?::" VLLM_H16                  \
  "|(?:(?:" VLLM_H16 ":){0,6}" VLLM_H16 ")?::)"
#define VLLM_ATEXT "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
#define VLLM_LABEL "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
// RFC 3986 pieces.
#define VLLM_UNRESERVED "-A-Za-z0-9._~"  // "-" first: literal in a class
#define VLLM_SUBDELIMS "!$&'()*+,;="
#define VLLM_PCT "%[0-9A-Fa-f]{2}"
#define VLLM_PCHAR "(?:[" VLLM_UNRESERVED VLLM_SUBDELIMS ":@]|" VLLM_PCT ")"
// RFC 3986's absolute URI, except that the part after "scheme:" may not be empty: the RFC allows
// "a:" (path-empty), ajv's "uri" (the validator our outputs are checked against, and the one
// most clients use) does not.
#define VLLM_URI                                                                              \
  "[A-Za-z][A-Za-z0-9+.-]*:"                                                                  \
  "(?://(?:(?:[" VLLM_UNRESERVED VLLM_SUBDELIMS ":]|" VLLM_PCT ")*@)?"                        \
  "(?:\\[(?:" VLLM_IPV6 "|v[0-9A-Fa-f]+\\.[" VLLM_UNRESERVED VLLM_SUBDELIMS ":]+)\\]"         \
  "|(?:[" VLLM_UNRESERVED VLLM_SUBDELIMS "]|" VLLM_PCT ")*)"                                  \
  "(?::\\d*)?(?:/" VLLM_PCHAR "*)*"                                                           \
  "|/(?:" VLLM_PCHAR "+(?:/" VLLM_PCHAR "*)*)?"                                               \
  "|" VLLM_PCHAR "+(?:/" VLLM_PCHAR "*)*)"                                                    \
  "(?:\\?(?:" VLLM_PCHAR "|[/?])*)?(?:#(?:" VLLM_PCHAR "|[/?])*)?"

}  // namespace

const char* json_format_pattern(std::string_view format) {
  if (format == "date-time") return VLLM_FULL_DATE "[tT]" VLLM_FULL_TIME;
  if (format == "date") return VLLM_FULL_DATE;
  if (format == "time") return VLLM_FULL_TIME;
  if (format == "email")
    return VLLM_ATEXT "+(?:\\." VLLM_ATEXT "+)*@(?:(?:" VLLM_LABEL "\\.)*" VLLM_LABEL
                      "|\\[" VLLM_IPV4 "\\])";
  if (format == "uri") return VLLM_URI;
  if (format == "uuid")
    return "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
  if (format == "ipv4") return VLLM_IPV4;
  if (format == "ipv6") return VLLM_IPV6;
  return nullptr;
}

}  // namespace vllm::structured
