// Content-format detection: a walk over the template's syntax tree looking for
//   {% for message in messages %} ... {% for part in message['content'] %}
// with the names that alias `messages` followed through {% set %} (e.g. `set loop_messages =
// messages[1:]`). A template that only prints message['content'] gets "string".
#include "vllm/chat/content_format.h"

#include <deque>
#include <set>
#include <vector>

#include "vllm/chat/ast.h"
#include "vllm/chat/chat_template.h"
#include "vllm/core/error.h"

namespace vllm {

using namespace jinja;

namespace {

// Every {% for %} and {% set name = ... %} of the template, however deeply nested.
struct Statements {
  std::vector<const ForStmt*> loops;
  std::vector<const SetStmt*> sets;

  void collect(const Body& body) {
    for (const auto& s : body) collect(s.get());
  }
  void collect(const Stmt* s) {
    if (auto* f = dynamic_cast<const ForStmt*>(s)) {
      loops.push_back(f);
      collect(f->body);
      collect(f->else_body);
    } else if (auto* set = dynamic_cast<const SetStmt*>(s)) {
      sets.push_back(set);
    } else if (auto* i = dynamic_cast<const IfStmt*>(s)) {
      for (const auto& branch : i->branches) collect(branch.second);
      collect(i->else_body);
    } else if (auto* b = dynamic_cast<const SetBlockStmt*>(s)) {
      collect(b->body);
    } else if (auto* m = dynamic_cast<const MacroStmt*>(s)) {
      collect(m->def.body);
    } else if (auto* c = dynamic_cast<const CallBlockStmt*>(s)) {
      collect(c->caller.body);
    } else if (auto* fb = dynamic_cast<const FilterBlockStmt*>(s)) {
      collect(fb->body);
    } else if (auto* w = dynamic_cast<const WithStmt*>(s)) {
      collect(w->body);
    } else if (auto* sc = dynamic_cast<const ScopeStmt*>(s)) {
      collect(sc->body);
    }
  }
};

bool is_name(const Expr* e, const std::string& var) {
  auto* n = dynamic_cast<const Name*>(e);
  return n && n->name == var;
}

// var['key'] or var.key
bool is_member(const Expr* e, const std::string& var, const std::string& key) {
  if (auto* g = dynamic_cast<const GetItem*>(e)) {
    auto* lit = dynamic_cast<const Literal*>(g->key.get());
    return is_name(g->object.get(), var) && lit && lit->value.is_string() && lit->value.as_string() == key;
  }
  if (auto* a = dynamic_cast<const GetAttr*>(e)) return is_name(a->object.get(), var) && a->name == key;
  return false;
}

// `var` (or var[key] when key is given), possibly through filters, tests and slices:
// messages | reverse, messages[1:], message['content'] | list.
bool refers_to(const Expr* e, const std::string& var, const std::string* key = nullptr) {
  if (auto* f = dynamic_cast<const Filter*>(e)) return refers_to(f->operand.get(), var, key);
  if (auto* t = dynamic_cast<const Test*>(e)) return refers_to(t->operand.get(), var, key);
  if (auto* s = dynamic_cast<const SliceExpr*>(e)) return refers_to(s->object.get(), var, key);
  return key ? is_member(e, var, *key) : is_name(e, var);
}

}  // namespace

ChatContentFormat parse_chat_content_format(std::string_view name) {
  if (name == "auto") return ChatContentFormat::kAuto;
  if (name == "string") return ChatContentFormat::kString;
  if (name == "openai") return ChatContentFormat::kOpenAI;
  throw Error("chat template content format must be one of auto, string, openai (got '" + std::string(name) + "')");
}

const char* chat_content_format_name(ChatContentFormat format) {
  switch (format) {
    case ChatContentFormat::kAuto: return "auto";
    case ChatContentFormat::kString: return "string";
    case ChatContentFormat::kOpenAI: return "openai";
  }
  return "auto";
}

ChatContentFormat detect_chat_content_format(const ChatTemplate& tmpl) {
  Statements all;
  all.collect(tmpl.syntax_tree().body);
  // The names that hold the messages: `messages`, and what is set from one of them.
  std::set<std::string> messages_vars{"messages"};
  std::deque<std::string> pending{"messages"};
  while (!pending.empty()) {
    const std::string var = pending.front();
    pending.pop_front();
    for (const SetStmt* s : all.sets)
      if (s->target.kind == Target::Kind::kName && refers_to(s->value.get(), var) &&
          messages_vars.insert(s->target.name).second)
        pending.push_back(s->target.name);
  }
  // The loop variables that hold one message.
  std::set<std::string> message_vars;
  for (const ForStmt* f : all.loops) {
    if (f->target.kind != Target::Kind::kName) continue;
    for (const std::string& var : messages_vars)
      if (refers_to(f->iterable.get(), var)) message_vars.insert(f->target.name);
  }
  static const std::string kContent = "content";
  for (const ForStmt* f : all.loops)
    for (const std::string& var : message_vars)
      if (refers_to(f->iterable.get(), var, &kContent)) return ChatContentFormat::kOpenAI;
  return ChatContentFormat::kString;
}

ChatContentFormat resolve_chat_content_format(ChatContentFormat given, const ChatTemplate& tmpl) {
  return given == ChatContentFormat::kAuto ? detect_chat_content_format(tmpl) : given;
}

}  // namespace vllm
