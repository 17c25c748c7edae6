// Methods of Python's str, list, tuple and dict that templates call: `s.strip()`,
// `s.split(',')`, `d.items()`, `ns.list.append(x)`, ...
#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_set>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"
#include "vllm/chat/formatting.h"
#include "vllm/chat/interpreter.h"
#include "vllm/chat/operators.h"
#include "vllm/chat/unicode.h"

namespace vllm::jinja {

namespace {

using Names = std::unordered_set<std::string_view>;

const Names& str_methods() {
  static const Names names = {
      "capitalize", "casefold",   "center",       "count",      "endswith",  "find",
      "format",     "index",      "isalnum",      "isalpha",    "isascii",   "isdecimal",
      "isdigit",    "isidentifier", "islower",    "isnumeric",  "isprintable", "isspace",
      "istitle",    "isupper",    "join",         "ljust",      "lower",     "lstrip",
      "partition",  "removeprefix", "removesuffix", "replace",  "rfind",     "rindex",
      "rjust",      "rpartition", "rsplit",       "rstrip",     "split",     "splitlines",
      "startswith", "strip",      "swapcase",     "title",      "upper",     "zfill"};
  return names;
}
const Names& list_methods() {
  static const Names names = {"append", "clear", "copy",    "count", "extend",
                              "index",  "insert", "pop",    "remove", "reverse", "sort"};
  return names;
}
const Names& tuple_methods() {
  static const Names names = {"count", "index"};
  return names;
}
const Names& dict_methods() {
  static const Names names = {"clear", "copy",   "get",        "items",  "keys",
                              "pop",   "popitem", "setdefault", "update", "values"};
  return names;
}

// ---- text helpers ------------------------------------------------------------------------

// Byte offsets of the code point range that Python's s[start:end] selects.
struct Span {
  size_t begin, end;  // bytes
  int64_t cp_begin;   // code point index of begin
};

Span span_of(const std::string& s, const Value& start_v, const Value& end_v) {
  const int64_t len = static_cast<int64_t>(unicode::length(s));
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (v.is_none() || (v.is_undefined() && v.undefined_hint().empty())) return fallback;
    int64_t i = to_index(v, "slice indices");
    if (i < 0) i = std::max<int64_t>(0, i + len);
    return std::min(i, len);
  };
  const int64_t a = clamp(start_v, 0);
  const int64_t b = std::max(a, clamp(end_v, len));
  return {unicode::byte_offset(s, static_cast<size_t>(a)),
          unicode::byte_offset(s, static_cast<size_t>(b)), a};
}

bool is_space_at(const std::string& s, size_t& i) {
  size_t j = i;
  if (unicode::is_space(unicode::next(s, j))) {
    i = j;
    return true;
  }
  return false;
}

std::vector<Value> split_whitespace(const std::string& s, int64_t maxsplit) {
  std::vector<Value> out;
  size_t i = 0;
  while (true) {
    while (i < s.size() && is_space_at(s, i)) {
    }
    if (i >= s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.push_back(Value::string(s.substr(i)));  // the rest, trailing space included
      break;
    }
    const size_t start = i;
    size_t word_end = i;
    while (i < s.size()) {
      size_t j = i;
      if (unicode::is_space(unicode::next(s, j))) break;
      i = j;
      word_end = i;
    }
    out.push_back(Value::string(s.substr(start, word_end - start)));
  }
  return out;
}

std::vector<Value> rsplit_whitespace(const std::string& s, int64_t maxsplit) {
  std::vector<Value> out;
  size_t i = s.size();
  auto space_before = [&](size_t pos, size_t& prev_pos) {
    prev_pos = pos;
    return unicode::is_space(unicode::prev(s, prev_pos));
  };
  while (true) {
    size_t p;
    while (i > 0 && space_before(i, p)) i = p;
    if (i == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.push_back(Value::string(s.substr(0, i)));
      break;
    }
    const size_t end = i;
    while (i > 0 && !space_before(i, p)) i = p;
    out.push_back(Value::string(s.substr(i, end - i)));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<Value> split_on(const std::string& s, const std::string& sep, int64_t maxsplit,
                            bool from_right) {
  if (sep.empty()) fail("empty separator");
  std::vector<Value> out;
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      const size_t hit = s.find(sep, start);
      if (hit == std::string::npos) break;
      out.push_back(Value::string(s.substr(start, hit - start)));
      start = hit + sep.size();
    }
    out.push_back(Value::string(s.substr(start)));
    return out;
  }
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    const size_t hit = s.rfind(sep, end - sep.size());
    if (hit == std::string::npos) break;
    out.push_back(Value::string(s.substr(hit + sep.size(), end - hit - sep.size())));
    end = hit;
  }
  out.push_back(Value::string(s.substr(0, end)));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<Value> splitlines(const std::string& s, bool keepends) {
  std::vector<Value> out;
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    const size_t at = i;
    const char32_t c = unicode::next(s, i);
    const bool is_break = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C ||
                          c == 0x1D || c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) continue;
    if (c == '\r' && i < s.size() && s[i] == '\n') ++i;
    out.push_back(Value::string(s.substr(start, (keepends ? i : at) - start)));
    start = i;
  }
  if (start < s.size()) out.push_back(Value::string(s.substr(start)));
  return out;
}

std::string replace_all(const std::string& s, const std::string& old, const std::string& repl,
                        int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement before every code point and at the end.
    int64_t done = 0;
    size_t i = 0;
    while (true) {
      if (count >= 0 && done >= count) break;
      out += repl;
      ++done;
      if (i >= s.size()) break;
      const size_t start = i;
      unicode::next(s, i);
      out.append(s, start, i - start);
    }
    out.append(s, std::min(i, s.size()), std::string::npos);
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old, start);
    if (hit == std::string::npos) break;
    out.append(s, start, hit - start);
    out += repl;
    start = hit + old.size();
    ++done;
    if (out.size() > kMaxStringBytes) fail("string is too large");
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string case_title(const std::string& s) {
  std::string out;
  bool previous_cased = false;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = unicode::next(s, i);
    if (unicode::is_upper(c) || (unicode::is_cased(c) && !unicode::is_lower(c))) {
      unicode::append(out, previous_cased ? unicode::to_lower(c) : c);
      previous_cased = true;
    } else if (unicode::is_lower(c)) {
      unicode::append(out, previous_cased ? c : unicode::to_title(c));
      previous_cased = true;
    } else {
      unicode::append(out, c);
      previous_cased = false;
    }
  }
  return out;
}

std::string case_capitalize(const std::string& s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = unicode::next(s, i);
    unicode::append(out, first ? unicode::to_title(c) : unicode::to_lower(c));
    first = false;
  }
  return out;
}

std::string justify(const std::string& s, int64_t width, const Value& fill_v, char how) {
  std::string fill = " ";
  if (fill_v.is_string()) {
    if (unicode::length(fill_v.as_string()) != 1)
      fail("The fill character must be exactly one character long");
    fill = fill_v.as_string();
  }
  const int64_t len = static_cast<int64_t>(unicode::length(s));
  if (width <= len) return s;
  const int64_t missing = width - len;
  int64_t left = 0;
  if (how == 'r') left = missing;
  if (how == 'c') left = missing / 2 + (missing & width & 1);  // CPython's centering rule
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < missing - left; ++i) out += fill;
  return out;
}

template <class Pred>
bool all_chars(const std::string& s, Pred pred) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size();)
    if (!pred(unicode::next(s, i))) return false;
  return true;
}

bool affix_matches(const std::string& s, const Value& affix, const Value& start, const Value& end,
                   bool prefix, const char* fn) {
  const Span span = span_of(s, start, end);
  const std::string_view view = std::string_view(s).substr(span.begin, span.end - span.begin);
  auto one = [&](const Value& a) {
    if (!a.is_string()) {
      fail(std::string(fn) + " first arg must be str or a tuple of str, not " + type_name(a));
    }
    const std::string& x = a.as_string();
    if (x.size() > view.size()) return false;
    return prefix ? view.substr(0, x.size()) == x : view.substr(view.size() - x.size()) == x;
  };
  if (affix.is_list() && affix.is_tuple()) {
    for (const auto& a : affix.as_list().items)
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

Value str_method(const std::string& s, const std::string& name, CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Params p(name, args, {"chars"});
    return Value::string(
        py_strip(s, p.get(0, Value::none()), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    Params p(name, args, {"sep", "maxsplit"});
    const Value sep = p.get(0, Value::none());
    const int64_t maxsplit = p.has(1) ? arg_int(p[1], name, "maxsplit") : -1;
    if (sep.is_none()) {
      return Value::list(name == "split" ? split_whitespace(s, maxsplit)
                                         : rsplit_whitespace(s, maxsplit));
    }
    return Value::list(split_on(s, arg_str(sep, name, "sep"), maxsplit, name == "rsplit"));
  }
  if (name == "splitlines") {
    Params p(name, args, {"keepends"});
    return Value::list(splitlines(s, p.get(0, Value::boolean(false)).truthy()));
  }
  if (name == "startswith" || name == "endswith") {
    Params p(name, args, {"affix", "start", "end"}, 1);
    return Value::boolean(affix_matches(s, p[0], p.get(1, Value::none()), p.get(2, Value::none()),
                                        name == "startswith", name.c_str()));
  }
  if (name == "replace") {
    Params p(name, args, {"old", "new", "count"}, 2);
    const int64_t count = p.has(2) ? arg_int(p[2], name, "count") : -1;
    return Value::string(
        replace_all(s, arg_str(p[0], name, "old"), arg_str(p[1], name, "new"), count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" ||
      name == "count") {
    Params p(name, args, {"sub", "start", "end"}, 1);
    const std::string& sub = arg_str(p[0], name, "sub");
    const Span span = span_of(s, p.get(1, Value::none()), p.get(2, Value::none()));
    const std::string_view view = std::string_view(s).substr(span.begin, span.end - span.begin);
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(unicode::length(view)) + 1);
      int64_t n = 0;
      for (size_t at = view.find(sub); at != std::string_view::npos;
           at = view.find(sub, at + sub.size()))
        ++n;
      return Value::integer(n);
    }
    const bool reverse = name[0] == 'r';
    const size_t hit = reverse ? view.rfind(sub) : view.find(sub);
    if (hit == std::string_view::npos) {
      if (name == "index" || name == "rindex") fail("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(span.cp_begin +
                          static_cast<int64_t>(unicode::count_before(view, hit)));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "swapcase" || name == "casefold") {
    Params p(name, args, {});
    if (name == "upper") return Value::string(unicode::upper(s));
    if (name == "lower" || name == "casefold") return Value::string(unicode::lower(s));
    if (name == "title") return Value::string(case_title(s));
    if (name == "capitalize") return Value::string(case_capitalize(s));
    std::string out;
    for (size_t i = 0; i < s.size();) {
      const char32_t c = unicode::next(s, i);
      unicode::append(out, unicode::is_upper(c)   ? unicode::to_lower(c)
                           : unicode::is_lower(c) ? unicode::to_upper(c)
                                                  : c);
    }
    return Value::string(out);
  }
  if (name == "join") {
    Params p(name, args, {"iterable"}, 1);
    std::string out;
    size_t index = 0;
    for (const auto& item : iterate(p[0])) {
      if (!item.is_string()) {
        fail("sequence item " + std::to_string(index) + ": expected str instance, " +
             type_name(item) + " found");
      }
      if (index++) out += s;
      out += item.as_string();
      if (out.size() > kMaxStringBytes) fail("string is too large");
    }
    return Value::string(out);
  }
  if (name == "format") return Value::string(str_format(s, args));
  if (name == "center" || name == "ljust" || name == "rjust") {
    Params p(name, args, {"width", "fillchar"}, 1);
    return Value::string(justify(s, arg_int(p[0], name, "width"), p.get(1, Value::none()),
                                 name == "center" ? 'c' : name == "ljust" ? 'l' : 'r'));
  }
  if (name == "zfill") {
    Params p(name, args, {"width"}, 1);
    const int64_t width = arg_int(p[0], name, "width");
    const int64_t len = static_cast<int64_t>(unicode::length(s));
    if (width <= len) return Value::string(s);
    const size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') +
                         s.substr(sign));
  }
  if (name == "partition" || name == "rpartition") {
    Params p(name, args, {"sep"}, 1);
    const std::string& sep = arg_str(p[0], name, "sep");
    if (sep.empty()) fail("empty separator");
    const size_t hit = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (hit == std::string::npos) {
      if (name == "partition")
        return Value::tuple({Value::string(s), Value::string(""), Value::string("")});
      return Value::tuple({Value::string(""), Value::string(""), Value::string(s)});
    }
    return Value::tuple({Value::string(s.substr(0, hit)), Value::string(sep),
                         Value::string(s.substr(hit + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    Params p(name, args, {"affix"}, 1);
    const std::string& a = arg_str(p[0], name, "affix");
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0) return Value::string(s.substr(a.size()));
    if (name == "removesuffix" && s.size() >= a.size() &&
        s.compare(s.size() - a.size(), a.size(), a) == 0)
      return Value::string(s.substr(0, s.size() - a.size()));
    return Value::string(s);
  }
  // Predicates.
  Params p(name, args, {});
  if (name == "isalnum") return Value::boolean(all_chars(s, unicode::is_alnum));
  if (name == "isalpha") return Value::boolean(all_chars(s, unicode::is_alpha));
  if (name == "isdecimal") return Value::boolean(all_chars(s, unicode::is_decimal));
  if (name == "isdigit") return Value::boolean(all_chars(s, unicode::is_digit));
  if (name == "isnumeric") return Value::boolean(all_chars(s, unicode::is_numeric));
  if (name == "isspace") return Value::boolean(all_chars(s, unicode::is_space));
  if (name == "isascii") return Value::boolean(unicode::is_ascii(s));
  if (name == "isprintable") {
    return Value::boolean(s.empty() || all_chars(s, unicode::is_printable));
  }
  if (name == "isidentifier") {
    bool first = true;
    return Value::boolean(all_chars(s, [&](char32_t c) {
      const bool ok = c == '_' || unicode::is_alpha(c) || (!first && unicode::is_numeric(c));
      first = false;
      return ok;
    }));
  }
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (size_t i = 0; i < s.size();) {
      const char32_t c = unicode::next(s, i);
      const bool wrong = name == "islower" ? (unicode::is_upper(c) ||
                                              (unicode::is_cased(c) && !unicode::is_lower(c)))
                                           : unicode::is_lower(c) || (unicode::is_cased(c) &&
                                                                      !unicode::is_upper(c));
      if (wrong) return Value::boolean(false);
      cased = cased || unicode::is_cased(c);
    }
    return Value::boolean(cased);
  }
  if (name == "istitle") {
    bool cased = false;
    bool previous_cased = false;
    for (size_t i = 0; i < s.size();) {
      const char32_t c = unicode::next(s, i);
      if (unicode::is_upper(c) || (unicode::is_cased(c) && !unicode::is_lower(c))) {
        if (previous_cased) return Value::boolean(false);
        previous_cased = cased = true;
      } else if (unicode::is_lower(c)) {
        if (!previous_cased) return Value::boolean(false);
        previous_cased = cased = true;
      } else {
        previous_cased = false;
      }
    }
    return Value::boolean(cased);
  }
  fail("'str' object has no attribute '" + name + "'");
}

// Refuses to put a container inside itself: shared ownership would never free the cycle.
void check_no_cycle(const Value& container, const Value& item) {
  const void* self = container.is_list() ? static_cast<const void*>(container.list_ptr().get())
                                         : static_cast<const void*>(container.dict_ptr().get());
  if (contains_container(item, self)) fail("cannot store a container inside itself");
}

Value list_method(Renderer& r, const Value& self, const std::string& name, CallArgs& args) {
  auto& items = self.as_list().items;
  if (name == "count") {
    Params p(name, args, {"value"}, 1);
    int64_t n = 0;
    for (const auto& x : items) n += equals(x, p[0]);
    return Value::integer(n);
  }
  if (name == "index") {
    Params p(name, args, {"value", "start", "stop"}, 1);
    const int64_t len = static_cast<int64_t>(items.size());
    auto clamp = [&](int64_t i) {
      if (i < 0) i = std::max<int64_t>(0, i + len);
      return std::min(i, len);
    };
    const int64_t start = p.has(1) ? clamp(arg_int(p[1], name, "start")) : 0;
    const int64_t stop = p.has(2) ? clamp(arg_int(p[2], name, "stop")) : len;
    for (int64_t i = start; i < stop; ++i)
      if (equals(items[static_cast<size_t>(i)], p[0])) return Value::integer(i);
    fail(repr(p[0]) + " is not in list");
  }
  if (self.is_tuple()) fail("'tuple' object has no attribute '" + name + "'");
  if (name == "append") {
    Params p(name, args, {"object"}, 1);
    check_no_cycle(self, p[0]);
    items.push_back(p[0]);
    return Value::none();
  }
  if (name == "extend") {
    Params p(name, args, {"iterable"}, 1);
    check_no_cycle(self, p[0]);
    for (auto& x : iterate(p[0])) items.push_back(std::move(x));
    return Value::none();
  }
  if (name == "insert") {
    Params p(name, args, {"index", "object"}, 2);
    check_no_cycle(self, p[1]);
    const int64_t len = static_cast<int64_t>(items.size());
    int64_t i = arg_int(p[0], name, "index");
    if (i < 0) i = std::max<int64_t>(0, i + len);
    i = std::min(i, len);
    items.insert(items.begin() + i, p[1]);
    return Value::none();
  }
  if (name == "pop") {
    Params p(name, args, {"index"});
    if (items.empty()) fail("pop from empty list");
    const int64_t len = static_cast<int64_t>(items.size());
    int64_t i = p.has(0) ? arg_int(p[0], name, "index") : -1;
    if (i < 0) i += len;
    if (i < 0 || i >= len) fail("pop index out of range");
    Value v = std::move(items[static_cast<size_t>(i)]);
    items.erase(items.begin() + i);
    return v;
  }
  if (name == "remove") {
    Params p(name, args, {"value"}, 1);
    for (auto it = items.begin(); it != items.end(); ++it) {
      if (equals(*it, p[0])) {
        items.erase(it);
        return Value::none();
      }
    }
    fail("list.remove(x): x not in list");
  }
  if (name == "clear") {
    Params p(name, args, {});
    items.clear();
    return Value::none();
  }
  if (name == "copy") {
    Params p(name, args, {});
    return Value::list(items);
  }
  if (name == "reverse") {
    Params p(name, args, {});
    std::reverse(items.begin(), items.end());
    return Value::none();
  }
  if (name == "sort") {
    Params p(name, args, {"reverse"});
    CallArgs sort_args;
    sort_args.keyword.emplace_back("reverse", p.get(0, Value::boolean(false)));
    sort_args.keyword.emplace_back("case_sensitive", Value::boolean(true));
    Value sorted = r.apply_filter("sort", self, sort_args);
    items = sorted.as_list().items;
    return Value::none();
  }
  fail("'list' object has no attribute '" + name + "'");
}

Value dict_items(const DictData& d) {
  std::vector<Value> out;
  out.reserve(d.entries.size());
  for (const auto& [key, value] : d.entries) out.push_back(Value::tuple({key, value}));
  return Value::list(std::move(out));
}

Value dict_method(const Value& self, const std::string& name, CallArgs& args) {
  DictData& d = self.as_dict();
  if (name == "get") {
    Params p(name, args, {"key", "default"}, 1);
    if (const Value* v = d.find(p[0])) return *v;
    return p.get(1, Value::none());
  }
  if (name == "items") {
    Params p(name, args, {});
    Value items = dict_items(d);
    items.as_list().view_name = "dict_items";
    return items;
  }
  if (name == "keys" || name == "values") {
    Params p(name, args, {});
    std::vector<Value> out;
    out.reserve(d.entries.size());
    for (const auto& [key, value] : d.entries) out.push_back(name == "keys" ? key : value);
    Value view = Value::list(std::move(out));
    view.as_list().view_name = name == "keys" ? "dict_keys" : "dict_values";
    return view;
  }
  if (name == "copy") {
    Params p(name, args, {});
    return shallow_copy(self);
  }
  if (name == "pop") {
    Params p(name, args, {"key", "default"}, 1);
    if (const Value* v = d.find(p[0])) {
      Value out = *v;
      d.erase(p[0]);
      return out;
    }
    if (p.has(1)) return p[1];
    fail("KeyError: " + repr(p[0]));
  }
  if (name == "popitem") {
    Params p(name, args, {});
    if (d.entries.empty()) fail("popitem(): dictionary is empty");
    auto entry = std::move(d.entries.back());
    d.entries.pop_back();
    return Value::tuple({std::move(entry.first), std::move(entry.second)});
  }
  if (name == "setdefault") {
    Params p(name, args, {"key", "default"}, 1);
    if (const Value* v = d.find(p[0])) return *v;
    Value v = p.get(1, Value::none());
    check_no_cycle(self, v);
    d.set(p[0], v);
    return v;
  }
  if (name == "update") {
    if (args.positional.size() > 1) fail("update expected at most 1 argument");
    if (!args.positional.empty()) {
      const Value& other = args.positional[0];
      check_no_cycle(self, other);
      if (other.is_mapping()) {
        for (const auto& [key, value] : other.as_dict().entries) d.set(key, value);
      } else {
        for (const auto& pair : iterate(other)) {
          std::vector<Value> kv = iterate(pair);
          if (kv.size() != 2) fail("dictionary update sequence element has wrong length");
          d.set(kv[0], kv[1]);
        }
      }
    }
    for (auto& [key, value] : args.keyword) {
      check_no_cycle(self, value);
      d.set(Value::string(key), value);
    }
    return Value::none();
  }
  if (name == "clear") {
    Params p(name, args, {});
    d.entries.clear();
    return Value::none();
  }
  fail("'dict' object has no attribute '" + name + "'");
}

}  // namespace

// ---- shared string helpers ---------------------------------------------------------------

std::string py_strip(std::string_view s, const Value& chars, bool left, bool right) {
  if (!chars.is_none() && !chars.is_string()) {
    require_defined(chars);
    fail("strip arg must be None or str");
  }
  const bool whitespace = chars.is_none();
  std::u32string set;
  if (!whitespace) set = unicode::decode(chars.as_string());
  auto strip_it = [&](char32_t c) {
    return whitespace ? unicode::is_space(c) : set.find(c) != std::u32string::npos;
  };
  size_t begin = 0;
  size_t end = s.size();
  if (left) {
    while (begin < end) {
      size_t j = begin;
      if (!strip_it(unicode::next(s, j))) break;
      begin = j;
    }
  }
  if (right) {
    while (end > begin) {
      size_t j = end;
      if (!strip_it(unicode::prev(s, j))) break;
      end = j;
    }
  }
  return std::string(s.substr(begin, end - begin));
}

namespace {

// Removes the underscores Python allows between digits; false if one is misplaced.
bool drop_underscores(std::string_view in, std::string& out, bool hex) {
  auto is_digit_char = [&](char c) {
    return (c >= '0' && c <= '9') || (hex && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'));
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '_') {
      if (i == 0 || i + 1 >= in.size() || !is_digit_char(in[i - 1]) || !is_digit_char(in[i + 1]))
        return false;
      continue;
    }
    out.push_back(in[i]);
  }
  return true;
}

}  // namespace

bool parse_python_float(std::string_view text, double& out) {
  const std::string stripped = py_strip(text, Value::none(), true, true);
  std::string_view t = stripped;
  bool negative = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  std::string lowered;
  for (char c : t) lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lowered == "inf" || lowered == "infinity") {
    out = negative ? -HUGE_VAL : HUGE_VAL;
    return true;
  }
  if (lowered == "nan") {
    out = std::nan("");
    return true;
  }
  std::string digits;
  if (t.empty() || !drop_underscores(t, digits, false)) return false;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != 'E' &&
        c != '+' && c != '-')
      return false;
  }
  double v = 0;
  auto res = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (res.ec != std::errc() || res.ptr != digits.data() + digits.size()) return false;
  out = negative ? -v : v;
  return true;
}

bool parse_python_int(std::string_view text, int base, int64_t& out) {
  const std::string stripped = py_strip(text, Value::none(), true, true);
  std::string_view t = stripped;
  bool negative = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  if (t.size() >= 2 && t[0] == '0') {
    const char p = static_cast<char>(t[1] | 0x20);
    const int prefix_base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefix_base && (base == 0 || base == prefix_base)) {
      base = prefix_base;
      t.remove_prefix(2);
      if (!t.empty() && t[0] == '_') t.remove_prefix(1);
    }
  }
  if (base == 0) {
    base = 10;
    if (t.size() > 1 && t[0] == '0' && t.find_first_not_of("0_") != std::string_view::npos)
      return false;
  }
  if (base < 2 || base > 36) fail("int() base must be >= 2 and <= 36, or 0");
  std::string digits;
  if (t.empty() || !drop_underscores(t, digits, base > 10)) return false;
  uint64_t mag = 0;
  auto res = std::from_chars(digits.data(), digits.data() + digits.size(), mag, base);
  if (res.ec != std::errc() || res.ptr != digits.data() + digits.size()) return false;
  if (mag > static_cast<uint64_t>(INT64_MAX) + (negative ? 1 : 0)) return false;
  out = negative ? static_cast<int64_t>(0 - mag) : static_cast<int64_t>(mag);
  return true;
}

// ---- dispatch ----------------------------------------------------------------------------

bool has_method(const Value& self, std::string_view name) {
  if (self.is_string()) return str_methods().count(name) > 0;
  if (self.is_list()) return (self.is_tuple() ? tuple_methods() : list_methods()).count(name) > 0;
  if (self.is_mapping()) return dict_methods().count(name) > 0;
  return false;
}

Value bound_method(const Value& self, const std::string& name) {
  if (!has_method(self, name)) return Value::undefined();
  return Value::object(std::make_shared<Function>(name, [self, name](Renderer& r, CallArgs& args) {
    if (self.is_string()) return str_method(self.as_string(), name, args);
    if (self.is_list()) return list_method(r, self, name, args);
    return dict_method(self, name, args);
  }));
}

}  // namespace vllm::jinja
