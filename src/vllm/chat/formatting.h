// Python's two string formatting languages: printf-style `"%s" % args` (also jinja2's
// `format` filter) and `str.format`.
#pragma once

#include <string>

#include "vllm/chat/value.h"

namespace vllm::jinja {

// fmt % args. args is a tuple (positional), a dict (for %(name)s), or a single value.
std::string percent_format(const std::string& fmt, const Value& args);
// fmt.format(*args, **kwargs).
std::string str_format(const std::string& fmt, const CallArgs& args);

}  // namespace vllm::jinja
