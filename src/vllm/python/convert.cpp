#include "convert.h"

#include <cmath>

#include "vllm/core/error.h"

namespace vllm::python {

namespace {

std::string type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>(); }

nlohmann::ordered_json int_to_json(py::handle obj, const std::string& what) {
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
  if (overflow == 0) {
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    return static_cast<int64_t>(v);
  }
  if (overflow > 0) {
    unsigned long long u = PyLong_AsUnsignedLongLong(obj.ptr());
    if (!PyErr_Occurred()) return static_cast<uint64_t>(u);
    PyErr_Clear();
  }
  throw py::value_error(what + " is out of range: " + py::repr(obj).cast<std::string>());
}

}  // namespace

nlohmann::ordered_json to_json(py::handle obj, const std::string& what) {
  if (obj.is_none()) return nullptr;
  // bool before int: True is an int in Python.
  if (PyBool_Check(obj.ptr())) return obj.ptr() == Py_True;
  if (PyLong_Check(obj.ptr())) return int_to_json(obj, what);
  if (PyFloat_Check(obj.ptr())) return PyFloat_AsDouble(obj.ptr());
  if (PyUnicode_Check(obj.ptr())) return obj.cast<std::string>();
  if (PyDict_Check(obj.ptr())) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (auto item : py::reinterpret_borrow<py::dict>(obj)) {
      std::string key;
      if (PyUnicode_Check(item.first.ptr())) {
        key = item.first.cast<std::string>();
      } else if (PyLong_Check(item.first.ptr()) && !PyBool_Check(item.first.ptr())) {
        key = py::str(item.first).cast<std::string>();
      } else {
        throw py::type_error(what + ": dict keys must be str or int, got " + type_name(item.first));
      }
      out[key] = to_json(item.second, what + "[" + py::repr(item.first).cast<std::string>() + "]");
    }
    return out;
  }
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    size_t i = 0;
    for (auto item : py::reinterpret_borrow<py::sequence>(obj)) {
      out.push_back(to_json(item, what + "[" + std::to_string(i) + "]"));
      ++i;
    }
    return out;
  }
  throw py::type_error(what + ": cannot pass an object of type " + type_name(obj) + " to the engine");
}

py::object from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return py::none();
    case nlohmann::ordered_json::value_t::boolean: return py::bool_(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return py::int_(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: return py::int_(j.get<uint64_t>());
    case nlohmann::ordered_json::value_t::number_float: return py::float_(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return py::str(j.get_ref<const std::string&>());
    case nlohmann::ordered_json::value_t::array: {
      py::list out;
      for (const auto& e : j) out.append(from_json(e));
      return out;
    }
    case nlohmann::ordered_json::value_t::object: {
      py::dict out;
      for (const auto& [k, v] : j.items()) out[py::str(k)] = from_json(v);
      return out;
    }
    default: return py::none();
  }
}

nlohmann::json params_json(py::handle obj, const std::string& what) {
  if (PyUnicode_Check(obj.ptr())) {
    try {
      return nlohmann::json::parse(obj.cast<std::string>());
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
      throw py::value_error(what + " is not valid JSON: " + std::string(e.what()));
    }
  }
  if (obj.is_none()) return nlohmann::json::object();
  if (!PyDict_Check(obj.ptr())) throw py::type_error(what + " must be a JSON string or a dict, got " + type_name(obj));
  // ordered_json -> json: the key order of sampling parameters does not matter.
  return nlohmann::json::parse(to_json(obj, what).dump());
}

void register_error_translation() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      switch (e.kind()) {
        case ErrorKind::kInvalidArgument:
        case ErrorKind::kUnsupported: PyErr_SetString(PyExc_ValueError, e.what()); break;
        case ErrorKind::kNotFound: PyErr_SetString(PyExc_FileNotFoundError, e.what()); break;
        case ErrorKind::kModelLoad:
        case ErrorKind::kInternal: PyErr_SetString(PyExc_RuntimeError, e.what()); break;
      }
    } catch (const nlohmann::json::exception& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
}

}  // namespace vllm::python
