#include <string>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"

namespace vllm::jinja {

Params::Params(std::string_view function, CallArgs& args, std::initializer_list<const char*> names,
               size_t required) {
  const std::vector<std::string_view> params(names.begin(), names.end());
  slots_.assign(params.size(), nullptr);
  const std::string fn(function);
  if (args.positional.size() > params.size()) {
    fail(fn + "() takes at most " + std::to_string(params.size()) + " argument(s) (" +
         std::to_string(args.positional.size()) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) slots_[i] = &args.positional[i];
  for (auto& [key, value] : args.keyword) {
    size_t index = params.size();
    for (size_t i = 0; i < params.size(); ++i)
      if (params[i] == key) index = i;
    if (index == params.size()) fail(fn + "() got an unexpected keyword argument '" + key + "'");
    if (slots_[index]) fail(fn + "() got multiple values for argument '" + key + "'");
    slots_[index] = &value;
  }
  for (size_t i = 0; i < required && i < params.size(); ++i) {
    if (!slots_[i]) fail(fn + "() missing required argument '" + std::string(params[i]) + "'");
  }
}

int64_t arg_int(const Value& v, std::string_view function, std::string_view param) {
  require_defined(v);
  if (v.is_integral()) return v.as_int();
  fail(std::string(function) + "(): '" + type_name(v) + "' object cannot be interpreted as an " +
       "integer (argument '" + std::string(param) + "')");
}

const std::string& arg_str(const Value& v, std::string_view function, std::string_view param) {
  require_defined(v);
  if (v.is_string()) return v.as_string();
  fail(std::string(function) + "() argument '" + std::string(param) + "' must be str, not " +
       type_name(v));
}

}  // namespace vllm::jinja
