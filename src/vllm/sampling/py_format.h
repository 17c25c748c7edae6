// Python-style text for values quoted in error messages. vLLM's messages are f-strings, so a
// float prints as repr() does ("1.0", "1e-05") and a list as "[1, 2]"; clients and tests
// compare those strings, so ours must print the same.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vllm::pyfmt {

// repr(float): shortest round-trip digits, ".0" on integral values, exponent form below 1e-4
// and from 1e16 ("1e-05", "1.5e+16"), "inf", "-inf", "nan".
std::string float_repr(double v);
// repr(str): single quotes unless the text holds a ' and no ", escapes as Python does.
std::string str_repr(std::string_view s);
// str(list[int]) and str(list[str]).
std::string int_list(std::span<const int32_t> values);
std::string str_list(std::span<const std::string> values);

}  // namespace vllm::pyfmt
