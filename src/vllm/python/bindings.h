// The pieces of the _vllm_cpp module, each registered by its own file.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "vllm/tokenizer/tokenizer.h"

namespace vllm::python {

namespace py = pybind11;

// A loaded tokenizer as Python sees it (immutable, shared with the engine that loaded it).
struct PyTokenizer {
  std::shared_ptr<const Tokenizer> tok;
};

void bind_tokenizer(py::module_& m);  // Tokenizer, ChatTemplate
void bind_engine(py::module_& m);     // Engine, resolve_model_folder, sampling-parameter helpers

}  // namespace vllm::python
