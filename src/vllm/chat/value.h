// The values a template computes with, modelled on the Python objects Jinja2 sees: None,
// bool, int, float, str, list, tuple, dict, jinja2's Namespace and Undefined, plus host
// objects (functions, macros, loop contexts). Lists and dicts are shared by reference, as in
// Python, so `ns.items.append(x)` is visible through every name bound to the list.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace vllm::jinja {

class Renderer;
class Value;
class Object;
struct ListData;
struct DictData;

// Containers nested deeper than this are refused (json input, repr, tojson, comparisons),
// so that no recursive walk over a value can exhaust the stack.
inline constexpr int kMaxValueDepth = 512;

// jinja2's default Undefined: prints as "", is falsy and iterates as empty; most other uses
// raise an UndefinedError whose text is `hint`.
struct Undefined {
  std::string hint;
};

struct NoneType {};

// Arguments of a call, as Python passes them.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject };

  Value() = default;  // undefined, with no hint
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value namespace_object();
  static Value object(std::shared_ptr<Object> o);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // int, float or bool: Python's numbers.Number (bool is an int subclass there).
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_integral() const { return is_int() || is_bool(); }  // usable as a Python int
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }  // list or tuple
  bool is_tuple() const;
  bool is_dict() const { return kind() == Kind::kDict; }  // dict or Namespace
  bool is_mapping() const;                                 // a real dict, not a Namespace
  bool is_namespace() const;
  bool is_object() const { return kind() == Kind::kObject; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;      // int or bool
  double as_double() const;    // int, bool or float
  const std::string& as_string() const { return std::get<std::string>(v_); }
  std::string& as_string() { return std::get<std::string>(v_); }
  ListData& as_list() const { return *std::get<std::shared_ptr<ListData>>(v_); }
  DictData& as_dict() const { return *std::get<std::shared_ptr<DictData>>(v_); }
  Object& as_object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  const std::shared_ptr<ListData>& list_ptr() const {
    return std::get<std::shared_ptr<ListData>>(v_);
  }
  const std::shared_ptr<DictData>& dict_ptr() const {
    return std::get<std::shared_ptr<DictData>>(v_);
  }
  const std::shared_ptr<Object>& object_ptr() const {
    return std::get<std::shared_ptr<Object>>(v_);
  }
  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }

  // Python truthiness.
  bool truthy() const;

 private:
  std::variant<Undefined, NoneType, bool, int64_t, double, std::string,
               std::shared_ptr<ListData>, std::shared_ptr<DictData>, std::shared_ptr<Object>>
      v_;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  // Attribute names of a named tuple (groupby's (grouper, list)); empty for plain lists.
  std::vector<std::string> field_names;
  // "dict_items", "dict_keys" or "dict_values" for the results of those dict methods, which
  // Python prints as dict_items([...]); null for plain lists.
  const char* view_name = nullptr;
  ListData() = default;
  ListData(const ListData&) = delete;
  ListData& operator=(const ListData&) = delete;
  ~ListData();  // tears nested containers down iteratively, never by deep recursion
};

struct DictData {
  enum class Type : uint8_t { kDict, kNamespace };
  Type type = Type::kDict;
  // Insertion order is kept: Python dicts are ordered, and tojson must reproduce it.
  std::vector<std::pair<Value, Value>> entries;

  DictData() = default;
  DictData(const DictData&) = delete;
  DictData& operator=(const DictData&) = delete;
  ~DictData();

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
  bool erase(const Value& key);
};

// Host objects: builtin functions, bound methods, macros, loop contexts, cyclers.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  virtual std::string repr() const;
  virtual bool callable() const { return false; }
  virtual Value call(Renderer& r, CallArgs& args);
  // Attribute lookup (`obj.name`); undefined when there is none.
  virtual Value get_attr(const std::string& name);
};

// ---- conversions -----------------------------------------------------------------------

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

struct JsonOptions {
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_indent = false;
  std::string indent;  // the text of one indentation level
  std::string item_separator = ", ";
  std::string key_separator = ": ";
};
// json.dumps(value, ...) with Python's exact spacing, escaping and float formatting.
std::string to_json(const Value& v, const JsonOptions& options);

// Python str(v) and repr(v). str(undefined) is "".
std::string to_str(const Value& v);
std::string repr(const Value& v);
std::string repr_string(std::string_view s);
std::string float_repr(double d);

// Python type names, for error messages: "str", "int", "NoneType", "dict", ...
std::string type_name(const Value& v);
// jinja2's object_type_repr: "None", or "<type> object".
std::string object_type_repr(const Value& v);

// ---- Python semantics ------------------------------------------------------------------

// Raises the UndefinedError that using `v` in this way means.
[[noreturn]] void throw_undefined(const Value& v);
// Raises if v is undefined; used by operations that Undefined refuses.
inline void require_defined(const Value& v) {
  if (v.is_undefined()) throw_undefined(v);
}

bool equals(const Value& a, const Value& b, int depth = 0);
// Python's a < b; raises TypeError for unorderable pairs.
bool less(const Value& a, const Value& b, int depth = 0);
// len(v); raises TypeError for unsized values. len(undefined) is 0.
size_t length(const Value& v);
// list(v): the items a for-loop visits. Strings give characters, dicts their keys.
std::vector<Value> iterate(const Value& v);
// A shallow or deep copy, for Python's copy() and to detach values from the context.
Value shallow_copy(const Value& v);
// True if `needle`'s container is reachable from `haystack` (guards against cycles).
bool contains_container(const Value& haystack, const void* needle, int depth = 0);

}  // namespace vllm::jinja
