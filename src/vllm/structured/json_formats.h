// JSON Schema `format` values we assert, as ECMAScript patterns (full match) that go through
// the regex front end. Each is exact or tighter than its RFC, never looser:
//   date-time, date, time  RFC 3339 (day counts per month and leap years exact; T/Z in either
//                          case; leap seconds (:60) rejected; time needs its offset)
//   email                  RFC 5321 dot-atom local part @ a DNS name (labels of 1-63
//                          characters) or an IPv4 address literal; quoted local parts rejected
//   uri                    RFC 3986 URI (scheme required), ASCII only
//   uuid                   RFC 4122 textual form, either hex case
//   ipv4                   dotted quad, 0-255, no leading zeros
//   ipv6                   RFC 4291 text forms incl. :: and an embedded IPv4 tail; no zone id
#pragma once

#include <string_view>

namespace vllm::structured {

// The pattern for `format`, or nullptr when we do not support that format.
const char* json_format_pattern(std::string_view format);

}  // namespace vllm::structured
