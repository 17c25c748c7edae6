// _vllm_cpp: the C++ engine behind the `vllm` Python package. Kept thin on purpose: the
// vLLM-shaped classes (LLM, SamplingParams, RequestOutput, ...) are Python, in python/vllm/.
#include "bindings.h"
#include "convert.h"

PYBIND11_MODULE(_vllm_cpp, m) {
  m.doc() = "vllm-cpp engine bindings (used by the vllm package)";
  m.attr("__version__") = VLLM_VERSION;
  vllm::python::register_error_translation();
  vllm::python::bind_tokenizer(m);
  vllm::python::bind_engine(m);
}
