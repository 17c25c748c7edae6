// Conversions between Python objects and the JSON values the C++ API takes (sampling
// parameters, chat messages, engine arguments), and the error translation of the module.
#pragma once

#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

#include <string>

namespace vllm::python {

namespace py = pybind11;

// None, bool, int, float, str, list/tuple and dict (str or int keys) become JSON; a str is
// taken as-is (not parsed). Anything else raises TypeError naming `what`.
nlohmann::ordered_json to_json(py::handle obj, const std::string& what = "value");
// A JSON value as plain Python objects (dicts keep the JSON's key order).
py::object from_json(const nlohmann::ordered_json& j);

// Sampling parameters given as a JSON string or as a dict.
nlohmann::json params_json(py::handle obj, const std::string& what);

// Registers the translation of vllm::Error (and JSON errors) into Python exceptions.
void register_error_translation();

}  // namespace vllm::python
