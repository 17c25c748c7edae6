// Global names of the environment: jinja2's (range, namespace, dict, cycler, joiner) and the
// two transformers adds (raise_exception, strftime_now).
#include <cmath>
#include <ctime>
#include <memory>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"
#include "vllm/chat/interpreter.h"

namespace vllm::jinja {

namespace {

// jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

Value g_range(Renderer&, CallArgs& a) {
  if (!a.keyword.empty()) fail("range() takes no keyword arguments");
  const size_t n = a.positional.size();
  if (n < 1 || n > 3) fail("range expected 1 to 3 arguments, got " + std::to_string(n));
  int64_t start = 0, stop, step = 1;
  if (n == 1) {
    stop = arg_int(a.positional[0], "range", "stop");
  } else {
    start = arg_int(a.positional[0], "range", "start");
    stop = arg_int(a.positional[1], "range", "stop");
    if (n == 3) step = arg_int(a.positional[2], "range", "step");
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  // Length computed in long double so that extreme bounds cannot overflow.
  const long double span = static_cast<long double>(stop) - static_cast<long double>(start);
  long double count = span / static_cast<long double>(step);
  count = count <= 0 ? 0 : std::ceil(count);
  if (count > kMaxRange) {
    fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) out.push_back(Value::integer(start + i * step));
  return Value::list(std::move(out));
}

// dict(*args, **kwargs) into `target` (a dict or a namespace).
void fill_dict(Value& target, CallArgs& a, const char* fn) {
  if (a.positional.size() > 1) {
    fail(std::string(fn) + " expected at most 1 argument, got " + std::to_string(a.positional.size()));
  }
  DictData& d = target.as_dict();
  if (!a.positional.empty()) {
    const Value& src = a.positional[0];
    if (src.is_dict()) {
      for (const auto& [key, value] : src.as_dict().entries) d.set(key, value);
    } else {
      for (const auto& pair : iterate(src)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) fail(std::string(fn) + ": update sequence element has wrong length");
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [key, value] : a.keyword) d.set(Value::string(key), value);
}

Value g_namespace(Renderer&, CallArgs& a) {
  Value ns = Value::namespace_object();
  fill_dict(ns, a, "namespace");
  return ns;
}

Value g_dict(Renderer&, CallArgs& a) {
  Value d = Value::dict();
  fill_dict(d, a, "dict");
  return d;
}

Value g_raise_exception(Renderer&, CallArgs& a) {
  Params p("raise_exception", a, {"message"}, 1);
  fail(to_str(p[0]));  // the template's message, verbatim
}

Value g_strftime_now(Renderer&, CallArgs& a) {
  Params p("strftime_now", a, {"format"}, 1);
  const std::string& format = arg_str(p[0], "strftime_now", "format");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  if (format.empty()) return Value::string("");
  // strftime gives 0 both for "too small" and for an empty result; grow a few times.
  for (size_t size = 256; size <= 65536; size *= 4) {
    std::string buf(size, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &local);
    if (n > 0) {
      buf.resize(n);
      return Value::string(buf);
    }
  }
  return Value::string("");
}

// jinja2's cycler(*items): .next(), .current, .reset().
class Cycler : public Object, public std::enable_shared_from_this<Cycler> {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string type_name() const override { return "Cycler"; }
  Value get_attr(const std::string& name) override {
    if (name == "current") return items_[pos_];
    if (name == "items") return Value::list(items_);
    if (name == "pos") return Value::integer(static_cast<int64_t>(pos_));
    auto self = shared_from_this();
    if (name == "next") {
      return Value::object(std::make_shared<Function>("next", [self](Renderer&, CallArgs&) {
        Value v = self->items_[self->pos_];
        self->pos_ = (self->pos_ + 1) % self->items_.size();
        return v;
      }));
    }
    if (name == "reset") {
      return Value::object(std::make_shared<Function>("reset", [self](Renderer&, CallArgs&) {
        self->pos_ = 0;
        return Value::none();
      }));
    }
    return Object::get_attr(name);
  }

 private:
  std::vector<Value> items_;
  size_t pos_ = 0;
};

Value g_cycler(Renderer&, CallArgs& a) {
  if (a.positional.empty()) fail("at least one item has to be provided");
  return Value::object(std::make_shared<Cycler>(a.positional));
}

Value g_joiner(Renderer&, CallArgs& a) {
  Params p("joiner", a, {"sep"});
  auto used = std::make_shared<bool>(false);
  const std::string sep = p.has(0) ? to_str(p[0]) : ", ";
  return Value::object(std::make_shared<Function>("joiner", [used, sep](Renderer&, CallArgs&) {
    if (!*used) {
      *used = true;
      return Value::string("");
    }
    return Value::string(sep);
  }));
}

}  // namespace

void install_globals(Scope& scope) {
  auto add = [&](const char* name, Function::Impl fn) {
    scope.vars[name] = Value::object(std::make_shared<Function>(name, std::move(fn)));
  };
  add("range", g_range);
  add("namespace", g_namespace);
  add("dict", g_dict);
  add("raise_exception", g_raise_exception);
  add("strftime_now", g_strftime_now);
  add("cycler", g_cycler);
  add("joiner", g_joiner);
}

}  // namespace vllm::jinja
