// The structured-outputs compiler on client-supplied constraints: a JSON schema, a regex, a
// GBNF grammar, a choice or a structural tag (the first byte picks which; the rest is its text),
// through the front ends, the GBNF parser and the automaton, then a matcher walking bytes of the
// input. Errors must be vllm::Error (a 400 for the client), never a crash, a hang past the
// compile limits, or a grammar the front end wrote that its own parser refuses.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "vllm/core/error.h"
#include "vllm/structured/compiled_grammar.h"
#include "vllm/structured/matcher.h"
#include "vllm/structured/structured_outputs_params.h"

using namespace vllm;
using namespace vllm::structured;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  nlohmann::json j;
  switch (data[0] % 6) {
    case 0: j["json"] = text; break;  // a schema as its JSON text
    case 1: j["regex"] = text; break;
    case 2: j["grammar"] = text; break;
    case 3: j["structural_tag"] = text; break;
    case 4: j["choice"] = nlohmann::json::array({text, text.substr(0, text.size() / 2)}); break;
    default:
      j["json"] = text;
      j["reasoning"] = {{"start", "<think>"}, {"end", "</think>"}, {"open", (data[0] & 8) != 0}};
      break;
  }
  std::string gbnf;
  try {
    gbnf = StructuredOutputsParams::from_json(j).to_gbnf();
  } catch (const Error&) {
    return 0;  // refused with a message: what a client gets as a 400
  } catch (const nlohmann::json::exception&) {
    return 0;  // text that is not UTF-8 cannot be a JSON string (the server never gets here)
  }
  try {
    auto compiled = CompiledGrammar::from_gbnf(gbnf, nullptr);
    GrammarMatcher m(compiled);
    // Walk the input's own bytes as far as the grammar takes them.
    for (char c : text)
      if (!m.accept_bytes(std::string_view(&c, 1))) break;
    (void)m.can_terminate();
  } catch (const Error&) {
    // Past the compile limits (a documented 400), never anything else.
  }
  return 0;
}
