// The builtin vocabulary of the environment transformers uses: jinja2's filters and tests
// (with transformers' tojson), methods of str/list/dict, and the globals (range, namespace,
// raise_exception, strftime_now, ...). Also the argument binding these builtins share.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/chat/ast.h"
#include "vllm/chat/value.h"

namespace vllm::jinja {

struct Scope;

FilterFn find_filter(std::string_view name);  // null when unknown
TestFn find_test(std::string_view name);      // null when unknown

// Methods of builtin types, looked up by `obj.name` before dict keys (as Python does).
bool has_method(const Value& self, std::string_view name);
// A callable bound to `self`; undefined when self has no such method.
Value bound_method(const Value& self, const std::string& name);

void install_globals(Scope& scope);

// A host function as a template value.
class Function : public Object {
 public:
  using Impl = std::function<Value(Renderer&, CallArgs&)>;
  Function(std::string name, Impl impl) : name_(std::move(name)), impl_(std::move(impl)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  std::string repr() const override { return "<built-in function " + name_ + ">"; }
  bool callable() const override { return true; }
  Value call(Renderer& r, CallArgs& args) override { return impl_(r, args); }

 private:
  std::string name_;
  Impl impl_;
};

// Binds call arguments to parameter names the way Python does: positionals in order, then
// keywords by name. Errors read like Python's TypeErrors.
class Params {
 public:
  Params(std::string_view function, CallArgs& args, std::initializer_list<const char*> names,
         size_t required = 0);
  bool has(size_t i) const { return slots_[i] != nullptr; }
  Value& operator[](size_t i) const { return *slots_[i]; }
  Value get(size_t i, Value fallback) const { return has(i) ? *slots_[i] : std::move(fallback); }

 private:
  std::vector<Value*> slots_;
};

// Argument helpers that raise Python-like TypeErrors.
int64_t arg_int(const Value& v, std::string_view function, std::string_view param);
const std::string& arg_str(const Value& v, std::string_view function, std::string_view param);

// Python's float(s) and int(s, base) for strings; false when the text is not a number.
bool parse_python_float(std::string_view text, double& out);
bool parse_python_int(std::string_view text, int base, int64_t& out);

// Python's str.strip/lstrip/rstrip with an optional set of characters.
std::string py_strip(std::string_view s, const Value& chars, bool left, bool right);

}  // namespace vllm::jinja
