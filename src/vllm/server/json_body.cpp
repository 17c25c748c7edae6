#include "vllm/server/json_body.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "vllm/server/errors.h"

namespace vllm::server {

namespace {

using ObjectStore = ojson::object_t::Container;  // ordered_map is a vector of (key, value) pairs

// Cuts s to at most n bytes without splitting a UTF-8 character.
std::string utf8_prefix(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

std::string strip_exception_id(std::string what) {
  // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
  if (what.rfind("[json.exception.", 0) == 0)
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
  constexpr size_t kMax = 300;
  if (what.size() > kMax) what = utf8_prefix(what, kMax - 3) + "...";
  return what;
}

// Builds the document from nlohmann's SAX events (the parser itself is iterative).
class Builder {
 public:
  explicit Builder(int max_depth) : max_depth_(max_depth) {}

  bool null() { return add(ojson(nullptr)); }
  bool boolean(bool v) { return add(ojson(v)); }
  bool number_integer(ojson::number_integer_t v) { return add(ojson(v)); }
  bool number_unsigned(ojson::number_unsigned_t v) { return add(ojson(v)); }
  bool number_float(ojson::number_float_t v, const std::string&) { return add(ojson(v)); }
  bool string(std::string& v) { return add(ojson(std::move(v))); }
  bool binary(ojson::binary_t&) { return false; }  // not produced by the JSON format

  bool start_object(size_t) { return open(ojson::object()); }
  bool start_array(size_t) { return open(ojson::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(std::string& k) {
    stack_.back().key = std::move(k);
    return true;
  }

  bool parse_error(size_t, const std::string& token, const nlohmann::detail::exception& e) {
    if (e.id == 406) {
      // "number overflow parsing '1e400'": Python reads it as inf, which pydantic then refuses
      // for integer fields ("Input should be a finite number"); refuse it for any field.
      const std::string where = path();
      std::string shown = utf8_prefix(token, 40);
      if (token.size() > 40) shown.append("...");
      if (where.empty()) {
        error_.emplace("JSON decode error: the number " + shown + " is out of range");
      } else {
        error_.emplace(where + ": Input should be a finite number, got " + shown, top_field());
      }
    } else {
      error_.emplace("JSON decode error: " + strip_exception_id(e.what()));
    }
    return false;
  }

  ojson take() { return std::move(root_); }
  const std::optional<ApiError>& error() const { return error_; }

 private:
  struct Frame {
    ojson* container = nullptr;
    std::string key;  // objects: the key whose value comes next
    size_t count = 0;  // values added so far
    // Objects: their entries as parsed, duplicates included. ordered_map's own insert searches
    // every key (quadratic), and its entries have const keys, which a growing vector copies;
    // so they are gathered here and moved into the object once, when it closes.
    std::vector<std::pair<std::string, ojson>> staged;
  };
  static constexpr size_t kHashFrom = 16;  // below this, a linear duplicate check is cheaper

  // Adds v to the innermost container (or as the root); returns where it went.
  ojson* place(ojson&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = stack_.back();
    ++f.count;
    if (f.container->is_array()) {
      auto& items = *f.container->get_ptr<ojson::array_t*>();
      items.push_back(std::move(v));
      return &items.back();
    }
    f.staged.emplace_back(std::move(f.key), std::move(v));
    return &f.staged.back().second;
  }

  bool add(ojson&& v) {
    place(std::move(v));
    return true;
  }

  bool open(ojson&& container) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      error_.emplace("JSON decode error: the body is nested too deeply (more than " + std::to_string(max_depth_) +
                     " levels of arrays and objects)");
      return false;
    }
    ojson* where = place(std::move(container));
    // The parent does not grow while this container is open, so the pointer stays valid.
    stack_.push_back(Frame{where, {}, 0, {}});
    return true;
  }

  bool close() {
    Frame& f = stack_.back();
    if (f.container->is_object()) finish_object(f);
    stack_.pop_back();
    return true;
  }

  // Moves the staged entries into the object. A duplicate key keeps its first position and its
  // last value, as Python's dict does.
  static void finish_object(Frame& f) {
    ObjectStore& out = *f.container->get_ptr<ojson::object_t*>();
    out.reserve(f.staged.size());  // no reallocation below: the views into `out` stay valid
    if (f.staged.size() < kHashFrom) {
      for (auto& entry : f.staged) {
        // (Not a structured binding: clang 14 cannot capture one in the lambda.)
        const std::string& key = entry.first;
        auto same = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == key; });
        if (same != out.end()) same->second = std::move(entry.second);
        else out.emplace_back(std::move(entry.first), std::move(entry.second));
      }
    } else {
      // An open-addressing table of positions in `out` (no allocation per key).
      size_t capacity = 64;
      while (capacity < 2 * f.staged.size()) capacity <<= 1;
      constexpr uint32_t kEmpty = UINT32_MAX;
      std::vector<uint32_t> table(capacity, kEmpty);
      const std::hash<std::string_view> hash;
      for (auto& [key, value] : f.staged) {
        for (size_t slot = hash(key) & (capacity - 1);; slot = (slot + 1) & (capacity - 1)) {
          const uint32_t at = table[slot];
          if (at == kEmpty) {
            table[slot] = static_cast<uint32_t>(out.size());
            out.emplace_back(std::move(key), std::move(value));
            break;
          }
          if (out[at].first == key) {
            out[at].second = std::move(value);
            break;
          }
        }
      }
    }
    f.staged.clear();
  }

  // Where the parser is, as in "logit_bias.5" or "messages[0].content".
  std::string path() const {
    std::string out;
    for (size_t i = 0; i < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      if (f.container->is_array()) {
        // The innermost array is at its next element; outer ones at their open child.
        out.push_back('[');
        out.append(std::to_string(i + 1 == stack_.size() ? f.count : f.count - 1));
        out.push_back(']');
      } else {
        if (!out.empty()) out += '.';
        out += utf8_prefix(key_of(i), 40);
      }
    }
    return out;
  }

  // The key an object frame is at: the pending one (innermost) or its open child's (the last
  // staged entry).
  const std::string& key_of(size_t i) const {
    const Frame& f = stack_[i];
    return i + 1 == stack_.size() || f.staged.empty() ? f.key : f.staged.back().first;
  }

  std::optional<std::string> top_field() const {
    if (stack_.empty() || !stack_.front().container->is_object()) return std::nullopt;
    return utf8_prefix(key_of(0), 40);
  }

  int max_depth_;
  ojson root_;
  std::vector<Frame> stack_;
  std::optional<ApiError> error_;
};

}  // namespace

ojson parse_request_json(std::string_view text, int max_depth) {
  Builder builder(max_depth);
  const bool ok = ojson::sax_parse(text.begin(), text.end(), &builder, ojson::input_format_t::json, /*strict=*/true,
                                   /*ignore_comments=*/false);
  if (!ok || builder.error()) {
    if (builder.error()) throw *builder.error();
    throw ApiError("JSON decode error: invalid JSON");
  }
  return builder.take();
}

std::string json_excerpt(const ojson& v, size_t max_chars) {
  std::string out;
  struct Open {
    const ojson* value;
    size_t next;
  };
  std::vector<Open> stack;
  const auto dump_scalar = [&](const ojson& s) {
    if (s.is_string()) {
      // Only the start of a long string is escaped and shown.
      const std::string& str = s.get_ref<const std::string&>();
      std::string text = ojson(utf8_prefix(str, max_chars + 1)).dump(-1, ' ', false, ojson::error_handler_t::replace);
      if (str.size() > max_chars + 1) text.pop_back();  // the closing quote of a cut string
      out += text;
    } else {
      out += s.dump();  // numbers, booleans, null: short
    }
  };
  const auto emit = [&](const ojson& x) {
    if (x.is_array() || x.is_object()) {
      out += x.is_array() ? '[' : '{';
      stack.push_back({&x, 0});
    } else {
      dump_scalar(x);
    }
  };
  emit(v);
  while (!stack.empty() && out.size() <= max_chars) {
    const ojson& c = *stack.back().value;
    const size_t i = stack.back().next;
    if (i == c.size()) {
      out += c.is_array() ? ']' : '}';
      stack.pop_back();
      continue;
    }
    ++stack.back().next;  // before emit(), which may push
    if (i > 0) out += ',';
    if (c.is_array()) {
      emit((*c.get_ptr<const ojson::array_t*>())[i]);
    } else {
      const auto& entry = static_cast<const ObjectStore&>(*c.get_ptr<const ojson::object_t*>())[i];
      dump_scalar(ojson(entry.first));
      out += ':';
      emit(entry.second);
    }
  }
  if (out.size() > max_chars || !stack.empty()) out = utf8_prefix(out, max_chars > 3 ? max_chars - 3 : 0) + "...";
  return out;
}

void append_new_key(ojson& object, std::string key, ojson value) {
  static_cast<ObjectStore&>(*object.get_ptr<ojson::object_t*>()).emplace_back(std::move(key), std::move(value));
}

std::string json_error_text(const std::exception& e) { return strip_exception_id(e.what()); }

}  // namespace vllm::server
