// Post-processors for a single sequence: ByteLevel (ids unchanged; it only trims offsets),
// TemplateProcessing, RobertaProcessing, BertProcessing and Sequence.
#include <memory>
#include <sstream>
#include <vector>

#include "vllm/tokenizer/components.h"

namespace vllm::tok {

namespace {

class NoopProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
  void added_ids(std::vector<int32_t>&, std::vector<int32_t>&) const override {}
};

// Fixed ids around the sequence: what TemplateProcessing, Roberta and Bert reduce to for a
// single sequence.
class FixedProcessor final : public PostProcessor {
 public:
  FixedProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }
  void added_ids(std::vector<int32_t>& before, std::vector<int32_t>& after) const override {
    before.insert(before.end(), before_.begin(), before_.end());
    after.insert(after.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& p : items_) p->process(ids, add_special_tokens);
  }
  void added_ids(std::vector<int32_t>& before, std::vector<int32_t>& after) const override {
    // Later processors wrap the output of earlier ones.
    for (const auto& p : items_) {
      std::vector<int32_t> b, a;
      p->added_ids(b, a);
      before.insert(before.begin(), b.begin(), b.end());
      after.insert(after.end(), a.begin(), a.end());
    }
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

// One element of a template: a sequence placeholder ($A / $B) or a special token name.
struct TemplatePiece {
  bool is_sequence;
  std::string name;  // "A"/"B" or the special token's id in special_tokens
};

std::vector<TemplatePiece> parse_template(const Json& v, const JsonPath& where) {
  std::vector<TemplatePiece> out;
  if (v.is_string()) {
    // "[CLS] $A [SEP]" / "$A:0 <s>:1": whitespace-separated, optional ":type_id".
    std::istringstream in(v.get<std::string>());
    std::string word;
    while (in >> word) {
      const size_t colon = word.rfind(':');
      std::string head = word;
      if (colon != std::string::npos && colon > 0 && colon + 1 < word.size() &&
          word.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
        head = word.substr(0, colon);
      }
      if (!head.empty() && head[0] == '$') {
        const std::string seq = head.substr(1);
        if (seq.empty() || seq == "A" || seq == "a" ||
            seq.find_first_not_of("0123456789") == std::string::npos) {
          out.push_back({true, "A"});
        } else if (seq == "B" || seq == "b") {
          out.push_back({true, "B"});
        } else {
          where.fail("has an unknown sequence placeholder '" + head + "'");
        }
      } else {
        out.push_back({false, head});
      }
    }
    return out;
  }
  json_array(v, where);
  for (size_t i = 0; i < v.size(); ++i) {
    const Json& e = json_object(v[i], where[i]);
    if (const Json* s = json_find(e, "Sequence")) {
      out.push_back({true, json_get_string(*s, "id", where[i] / "Sequence")});
    } else if (const Json* t = json_find(e, "SpecialToken")) {
      out.push_back({false, json_get_string(*t, "id", where[i] / "SpecialToken")});
    } else {
      where[i].fail("must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  return out;
}

std::unique_ptr<PostProcessor> make_template(const Json& j, const JsonPath& where) {
  const std::vector<TemplatePiece> single =
      parse_template(json_require(j, "single", where), where / "single");
  if (const Json* pair = json_find(j, "pair")) parse_template(*pair, where / "pair");  // validated only
  const Json* specials = json_find(j, "special_tokens");
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (const TemplatePiece& p : single) {
    if (p.is_sequence) {
      if (p.name != "A") (where / "single").fail("uses $" + p.name + " in a single-sequence template");
      seen_sequence = true;
      continue;
    }
    const JsonPath entry_path = where / "special_tokens" / p.name;
    if (specials == nullptr || !specials->contains(p.name)) {
      entry_path.fail("is missing (the template uses special token '" + p.name + "')");
    }
    const Json& entry = json_object((*specials)[p.name], entry_path);
    const JsonPath ids_path = entry_path / "ids";
    const Json& ids = json_array(json_require(entry, "ids", entry_path), ids_path);
    for (size_t k = 0; k < ids.size(); ++k) {
      const auto id = static_cast<int32_t>(json_int(ids[k], ids_path[k]));
      (seen_sequence ? after : before).push_back(id);
    }
  }
  return std::make_unique<FixedProcessor>(std::move(before), std::move(after));
}

// ["<s>", 0] -> 0 (Roberta/Bert store their specials as [token, id]).
int32_t parse_special_pair(const Json& j, std::string_view key, const JsonPath& where) {
  const JsonPath p = where / key;
  const Json& v = json_array(json_require(j, key, where), p);
  if (v.size() != 2) p.fail("must be [token, id]");
  json_string(v[0], p[0]);
  return static_cast<int32_t>(json_int(v[1], p[1]));
}

}  // namespace

std::unique_ptr<PostProcessor> make_fixed_post_processor(std::vector<int32_t> before,
                                                         std::vector<int32_t> after) {
  return std::make_unique<FixedProcessor>(std::move(before), std::move(after));
}

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const JsonPath& where) {
  json_object(j, where);
  const std::string type = json_get_string(j, "type", where);
  if (type == "ByteLevel") return std::make_unique<NoopProcessor>();
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const int32_t cls = parse_special_pair(j, "cls", where);
    const int32_t sep = parse_special_pair(j, "sep", where);
    return std::make_unique<FixedProcessor>(std::vector<int32_t>{cls}, std::vector<int32_t>{sep});
  }
  if (type == "Sequence") {
    const JsonPath list_path = where / "processors";
    const Json& list = json_array(json_require(j, "processors", where), list_path);
    std::vector<std::unique_ptr<PostProcessor>> items;
    for (size_t i = 0; i < list.size(); ++i) {
      items.push_back(make_post_processor(list[i], list_path[i]));
    }
    return std::make_unique<SequenceProcessor>(std::move(items));
  }
  (where / "type").fail_component("unsupported post_processor type '" + type + "'");
}

}  // namespace vllm::tok
