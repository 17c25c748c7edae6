// The tokenizer and chat templates as Python sees them. python/vllm/tokenizer.py wraps these in a
// transformers-like object (encode, decode, apply_chat_template, eos_token_id, ...).
#include <pybind11/stl.h>

#include "bindings.h"
#include "convert.h"
#include "vllm/chat/chat_template.h"
#include "vllm/chat/content_format.h"
#include "vllm/core/error.h"

namespace vllm::python {

namespace {

py::object opt_int(std::optional<int32_t> v) { return v ? py::object(py::int_(*v)) : py::none(); }

// A parsed chat template (parse once, render many times).
struct PyChatTemplate {
  std::shared_ptr<const ChatTemplate> tmpl;
};

nlohmann::ordered_json json_arg(const py::object& obj, const std::string& what) {
  if (obj.is_none()) return nullptr;
  if (PyUnicode_Check(obj.ptr())) {
    try {
      return nlohmann::ordered_json::parse(obj.cast<std::string>());
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
      throw py::value_error(what + " is not valid JSON: " + std::string(e.what()));
    }
  }
  return to_json(obj, what);
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<PyTokenizer>(m, "Tokenizer", "A Hugging Face compatible tokenizer loaded from a model folder.")
      .def_static(
          "from_folder", [](const std::string& dir) { return PyTokenizer{Tokenizer::from_folder(dir)}; },
          py::arg("folder"))
      .def(
          "encode",
          [](const PyTokenizer& t, const std::string& text, bool add_special_tokens) {
            py::gil_scoped_release release;
            return t.tok->encode(text, add_special_tokens);
          },
          py::arg("text"), py::arg("add_special_tokens") = true)
      .def(
          "decode",
          [](const PyTokenizer& t, const std::vector<int32_t>& ids, bool skip_special_tokens,
             bool spaces_between_special_tokens, std::optional<bool> clean_up_tokenization_spaces) {
            DecodeOptions options;
            options.skip_special_tokens = skip_special_tokens;
            options.spaces_between_special_tokens = spaces_between_special_tokens;
            options.clean_up_tokenization_spaces = clean_up_tokenization_spaces;
            py::gil_scoped_release release;
            return t.tok->decode(std::span<const int32_t>(ids), options);
          },
          py::arg("ids"), py::arg("skip_special_tokens") = false, py::arg("spaces_between_special_tokens") = true,
          py::arg("clean_up_tokenization_spaces") = py::none())
      .def("vocab_size", [](const PyTokenizer& t) { return t.tok->vocab_size(); })
      .def(
          "token_to_id", [](const PyTokenizer& t, const std::string& token) { return opt_int(t.tok->token_to_id(token)); },
          py::arg("token"))
      .def(
          "id_to_token",
          [](const PyTokenizer& t, int32_t id) -> py::object {
            if (id < 0 || id >= t.tok->vocab_size()) return py::none();
            std::string s = t.tok->id_to_token(id);
            if (s.empty() && !t.tok->is_added_token(id)) return py::none();
            // Vocabulary strings are normally UTF-8; a raw byte token that is not is passed as
            // Python would show it after a lossy decode.
            PyObject* u = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
            if (!u) throw py::error_already_set();
            return py::reinterpret_steal<py::object>(u);
          },
          py::arg("id"))
      .def("is_special", [](const PyTokenizer& t, int32_t id) { return t.tok->is_special(id); }, py::arg("id"))
      .def("is_added_token", [](const PyTokenizer& t, int32_t id) { return t.tok->is_added_token(id); }, py::arg("id"))
      .def("bos_token_id", [](const PyTokenizer& t) { return opt_int(t.tok->bos_token_id()); })
      .def("eos_token_id", [](const PyTokenizer& t) { return opt_int(t.tok->eos_token_id()); })
      .def("pad_token_id", [](const PyTokenizer& t) { return opt_int(t.tok->pad_token_id()); })
      .def("unk_token_id", [](const PyTokenizer& t) { return opt_int(t.tok->unk_token_id()); })
      .def("bos_token", [](const PyTokenizer& t) { return t.tok->bos_token(); })
      .def("eos_token", [](const PyTokenizer& t) { return t.tok->eos_token(); })
      .def("pad_token", [](const PyTokenizer& t) { return t.tok->pad_token(); })
      .def("unk_token", [](const PyTokenizer& t) { return t.tok->unk_token(); })
      .def("add_bos_token", [](const PyTokenizer& t) { return t.tok->add_bos_token(); })
      .def("add_eos_token", [](const PyTokenizer& t) { return t.tok->add_eos_token(); })
      .def("clean_up_tokenization_spaces", [](const PyTokenizer& t) { return t.tok->clean_up_tokenization_spaces(); })
      .def(
          "chat_template",
          [](const PyTokenizer& t, const std::string& name) -> py::object {
            auto s = t.tok->chat_template(name);
            return s ? py::object(py::str(*s)) : py::none();
          },
          py::arg("name") = "default")
      .def("chat_template_names", [](const PyTokenizer& t) { return t.tok->chat_template_names(); })
      .def("model_max_length", [](const PyTokenizer& t) -> py::object {
        auto v = t.tok->model_max_length();
        return v ? py::object(py::int_(*v)) : py::none();
      });

  py::class_<PyChatTemplate>(m, "ChatTemplate", "A Jinja2 chat template, rendered as transformers renders it.")
      .def(py::init([](const std::string& source) { return PyChatTemplate{std::make_shared<const ChatTemplate>(source)}; }),
           py::arg("source"))
      .def_property_readonly("source", [](const PyChatTemplate& c) { return c.tmpl->source(); })
      .def_property_readonly(
          "content_format",
          [](const PyChatTemplate& c) { return std::string(chat_content_format_name(detect_chat_content_format(*c.tmpl))); },
          "\"openai\" when the template loops over a message's content parts, else \"string\" (vLLM's auto detection)")
      .def(
          "apply",
          [](const PyChatTemplate& c, const py::object& messages, bool add_generation_prompt, const py::object& tools,
             const py::object& documents, const std::string& bos_token, const std::string& eos_token,
             const py::object& extra_kwargs) {
            ChatTemplateInputs in;
            in.messages = json_arg(messages, "messages");
            if (!in.messages.is_array()) throw Error("messages must be a list of messages");
            in.tools = json_arg(tools, "tools");
            in.documents = json_arg(documents, "documents");
            in.add_generation_prompt = add_generation_prompt;
            in.bos_token = bos_token;
            in.eos_token = eos_token;
            in.extra_kwargs = json_arg(extra_kwargs, "chat_template_kwargs");
            py::gil_scoped_release release;
            return apply_chat_template(*c.tmpl, in);
          },
          py::arg("messages"), py::arg("add_generation_prompt") = false, py::arg("tools") = py::none(),
          py::arg("documents") = py::none(), py::arg("bos_token") = "", py::arg("eos_token") = "",
          py::arg("extra_kwargs") = py::none(),
          "transformers' apply_chat_template(tokenize=False). JSON arguments may be strings or Python values.");
}

}  // namespace vllm::python
