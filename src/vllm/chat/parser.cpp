#include "vllm/chat/parser.h"

#include <algorithm>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"

namespace vllm::jinja {

namespace {

// The parser recurses once per nested bracket, unary operator or block; this bounds the C++
// stack it can use. Real templates nest a handful of levels.
constexpr int kMaxParseNesting = 200;
// The height of any expression tree (long operator chains are built iteratively, but they are
// evaluated and destroyed recursively).
constexpr int kMaxExprDepth = 500;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  std::unique_ptr<Template> parse() {
    auto tmpl = std::make_unique<Template>();
    tmpl->body = subparse({});
    return tmpl;
  }

 private:
  // ---- token stream ----------------------------------------------------------------------

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(std::string_view op) const {
    return cur().type == TokenType::kOperator && cur().value == op;
  }
  bool is_name(std::string_view name) const {
    return cur().type == TokenType::kName && cur().value == name;
  }

  [[noreturn]] void error(const std::string& message) const {
    throw TemplateError(message, cur().line);
  }

  void expect_op(std::string_view op) {
    if (!is_op(op)) error("expected '" + std::string(op) + "', got " + describe(cur()));
    advance();
  }
  void expect(TokenType type, const char* what) {
    if (cur().type != type) error(std::string("expected ") + what + ", got " + describe(cur()));
    advance();
  }
  void expect_block_end() { expect(TokenType::kBlockEnd, "end of statement block"); }
  std::string expect_name() {
    if (cur().type != TokenType::kName) error("expected a name, got " + describe(cur()));
    std::string name = cur().value;
    advance();
    return name;
  }
  void expect_keyword(std::string_view name) {
    if (!is_name(name)) error("expected '" + std::string(name) + "', got " + describe(cur()));
    advance();
  }

  struct NestingGuard {
    explicit NestingGuard(Parser& p) : p(p) {
      if (++p.nesting_ > kMaxParseNesting) p.error("template is nested too deeply");
    }
    ~NestingGuard() { --p.nesting_; }
    Parser& p;
  };

  // ---- node construction -----------------------------------------------------------------

  template <class T>
  std::unique_ptr<T> make(int line) {
    auto node = std::make_unique<T>();
    node->line = line;
    return node;
  }

  // Records that `child` hangs under `parent`, keeping parent's height current.
  void adopt(Node& parent, const Node* child) {
    if (!child) return;
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > kMaxExprDepth) throw TemplateError("expression is too complex", parent.line);
  }
  void adopt_args(Node& parent, const ArgList& args) {
    for (const auto& a : args.positional) adopt(parent, a.get());
    for (const auto& [name, a] : args.keyword) adopt(parent, a.get());
    adopt(parent, args.star.get());
    adopt(parent, args.star_star.get());
  }

  // ---- statements ------------------------------------------------------------------------

  // Parses until `{% <one of end_tags>`; leaves the cursor on that tag's name.
  Body subparse(std::vector<std::string_view> end_tags) {
    Body body;
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case TokenType::kData: {
          auto node = make<TextStmt>(t.line);
          node->text = t.value;
          body.push_back(std::move(node));
          advance();
          break;
        }
        case TokenType::kVariableBegin: {
          auto node = make<OutputStmt>(t.line);
          advance();
          node->expr = parse_tuple(false, true, {}, false);
          expect(TokenType::kVariableEnd, "end of print statement");
          body.push_back(std::move(node));
          break;
        }
        case TokenType::kBlockBegin: {
          const Token& keyword = peek();
          if (keyword.type == TokenType::kName &&
              std::find(end_tags.begin(), end_tags.end(), keyword.value) != end_tags.end()) {
            advance();
            return body;
          }
          advance();
          body.push_back(parse_statement(end_tags));
          break;
        }
        case TokenType::kEof:
          if (!end_tags.empty()) {
            error("unexpected end of template: the '" + open_blocks_.back().first +
                  "' block opened on line " + std::to_string(open_blocks_.back().second) +
                  " was never closed (expected " + expected_tags(end_tags) + ")");
          }
          return body;
        default:
          error("unexpected " + describe(t));
      }
    }
  }

  static std::string expected_tags(const std::vector<std::string_view>& tags) {
    std::string out;
    for (size_t i = 0; i < tags.size(); ++i) {
      if (i) out += i + 1 == tags.size() ? " or " : ", ";
      out += "'" + std::string(tags[i]) + "'";
    }
    return out;
  }

  // Opens a block for error reporting; returns its body parsed up to one of end_tags.
  Body block_body(const std::string& tag, int line, std::vector<std::string_view> end_tags) {
    open_blocks_.emplace_back(tag, line);
    Body body = subparse(std::move(end_tags));
    open_blocks_.pop_back();
    return body;
  }

  StmtPtr parse_statement(const std::vector<std::string_view>& outer_end_tags) {
    NestingGuard guard(*this);
    const Token& t = cur();
    if (t.type != TokenType::kName) error("expected a tag name, got " + describe(t));
    const std::string& kw = t.value;
    if (kw == "for") return parse_for();
    if (kw == "if") return parse_if();
    if (kw == "set") return parse_set();
    if (kw == "macro") return parse_macro();
    if (kw == "call") return parse_call_block();
    if (kw == "filter") return parse_filter_block();
    if (kw == "with") return parse_with();
    if (kw == "block" || kw == "generation" || kw == "autoescape") return parse_scope(kw);
    if (kw == "break" || kw == "continue") return parse_loop_control(kw == "break");
    if (kw == "print" || kw == "do") return parse_expr_statement(kw == "print");
    if (kw == "extends" || kw == "include" || kw == "import" || kw == "from") {
      error("the '" + kw + "' tag is not supported: chat templates are single strings");
    }
    std::string message = "unknown tag '" + kw + "'";
    if (!outer_end_tags.empty()) {
      message += " (expected " + expected_tags(outer_end_tags) + " to close the '" +
                 open_blocks_.back().first + "' block opened on line " +
                 std::to_string(open_blocks_.back().second) + ")";
    }
    error(message);
  }

  StmtPtr parse_for() {
    auto node = make<ForStmt>(cur().line);
    advance();
    node->target = parse_assign_target(true, false, {"in"}, false);
    expect_keyword("in");
    node->iterable = parse_tuple(false, false, {"recursive"}, false);
    if (is_name("if")) {
      advance();
      node->condition = parse_expression(true);
    }
    if (is_name("recursive")) {
      advance();
      node->recursive = true;
    }
    expect_block_end();
    ++loop_depth_;
    node->body = block_body("for", node->line, {"endfor", "else"});
    --loop_depth_;
    if (is_name("else")) {
      advance();
      expect_block_end();
      node->else_body = block_body("for", node->line, {"endfor"});
    }
    advance();  // endfor
    expect_block_end();
    return node;
  }

  StmtPtr parse_if() {
    auto node = make<IfStmt>(cur().line);
    advance();
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      expect_block_end();
      Body body = block_body("if", node->line, {"elif", "else", "endif"});
      node->branches.emplace_back(std::move(test), std::move(body));
      if (is_name("elif")) {
        advance();
        continue;
      }
      if (is_name("else")) {
        advance();
        expect_block_end();
        node->else_body = block_body("if", node->line, {"endif"});
      }
      advance();  // endif
      expect_block_end();
      return node;
    }
  }

  StmtPtr parse_set() {
    const int line = cur().line;
    advance();
    Target target = parse_assign_target(true, false, {}, true);
    if (is_op("=")) {
      advance();
      auto node = make<SetStmt>(line);
      node->target = std::move(target);
      node->value = parse_tuple(false, true, {}, false);
      expect_block_end();
      return node;
    }
    auto node = make<SetBlockStmt>(line);
    node->target = std::move(target);
    if (is_op("|")) node->filters = parse_filter_chain(false);
    expect_block_end();
    node->body = block_body("set", line, {"endset"});
    advance();
    expect_block_end();
    return node;
  }

  void parse_signature(MacroDef& def) {
    expect_op("(");
    while (!is_op(")")) {
      if (!def.params.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string name = expect_name();
      if (std::find(def.params.begin(), def.params.end(), name) != def.params.end())
        error("duplicate argument '" + name + "' in macro definition");
      ExprPtr default_value;
      if (is_op("=")) {
        advance();
        default_value = parse_expression(true);
      } else if (!def.defaults.empty() && def.defaults.back()) {
        error("non-default argument follows default argument");
      }
      def.params.push_back(std::move(name));
      def.defaults.push_back(std::move(default_value));
    }
    advance();
  }

  // Parses a macro body with loop controls reset (a macro body is a new function).
  Body macro_body(MacroDef& def, const std::string& tag, const char* end_tag) {
    macros_.push_back(&def);
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    Body body = block_body(tag, def.line, {end_tag});
    loop_depth_ = saved_loops;
    macros_.pop_back();
    advance();
    expect_block_end();
    return body;
  }

  StmtPtr parse_macro() {
    auto node = make<MacroStmt>(cur().line);
    advance();
    node->def.line = node->line;
    node->def.name = expect_name();
    parse_signature(node->def);
    expect_block_end();
    node->def.body = macro_body(node->def, "macro", "endmacro");
    return node;
  }

  StmtPtr parse_call_block() {
    auto node = make<CallBlockStmt>(cur().line);
    advance();
    node->caller.name = "caller";
    node->caller.line = node->line;
    if (is_op("(")) parse_signature(node->caller);
    ExprPtr call = parse_expression(true);
    auto* as_call = dynamic_cast<Call*>(call.get());
    if (!as_call) error("expected a call expression after 'call'");
    call.release();
    node->call.reset(as_call);
    expect_block_end();
    node->caller.body = macro_body(node->caller, "call", "endcall");
    return node;
  }

  StmtPtr parse_filter_block() {
    auto node = make<FilterBlockStmt>(cur().line);
    advance();
    node->filters = parse_filter_chain(true);
    expect_block_end();
    node->body = block_body("filter", node->line, {"endfilter"});
    advance();
    expect_block_end();
    return node;
  }

  StmtPtr parse_with() {
    auto node = make<WithStmt>(cur().line);
    advance();
    while (cur().type != TokenType::kBlockEnd) {
      if (!node->assignments.empty()) expect_op(",");
      Target target = parse_assign_target(true, false, {}, false);
      expect_op("=");
      node->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    expect_block_end();
    node->body = block_body("with", node->line, {"endwith"});
    advance();
    expect_block_end();
    return node;
  }

  StmtPtr parse_scope(const std::string& kw) {
    auto node = make<ScopeStmt>(cur().line);
    advance();
    if (kw == "block") {
      expect_name();
      while (is_name("scoped") || is_name("required")) advance();
    } else if (kw == "autoescape") {
      parse_expression(true);  // autoescaping is off in transformers' environment anyway
    }
    expect_block_end();
    const std::string end_tag = "end" + kw;
    node->body = block_body(kw, node->line, {end_tag});
    advance();
    if (kw == "block" && cur().type == TokenType::kName) advance();  // {% endblock name %}
    expect_block_end();
    return node;
  }

  StmtPtr parse_loop_control(bool is_break) {
    auto node = make<LoopControlStmt>(cur().line);
    if (loop_depth_ == 0) error(std::string("'") + cur().value + "' outside of a loop");
    node->is_break = is_break;
    advance();
    expect_block_end();
    return node;
  }

  StmtPtr parse_expr_statement(bool print) {
    const int line = cur().line;
    advance();
    ExprPtr expr = parse_tuple(false, true, {}, false);
    expect_block_end();
    if (print) {
      auto node = make<OutputStmt>(line);
      node->expr = std::move(expr);
      return node;
    }
    auto node = make<ExprStmt>(line);
    node->expr = std::move(expr);
    return node;
  }

  // ---- assignment targets ----------------------------------------------------------------

  Target to_target(const Expr& e) {
    if (auto* name = dynamic_cast<const Name*>(&e)) {
      Target t;
      t.kind = Target::Kind::kName;
      t.name = name->name;
      return t;
    }
    if (auto* list = dynamic_cast<const ListExpr*>(&e); list && list->tuple) {
      Target t;
      t.kind = Target::Kind::kTuple;
      for (const auto& item : list->items) t.items.push_back(to_target(*item));
      return t;
    }
    throw TemplateError("can't assign to this expression", e.line);
  }

  Target parse_assign_target(bool with_tuple, bool name_only,
                             std::vector<std::string_view> extra_end, bool with_namespace) {
    if (with_namespace && cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
        peek().value == ".") {
      Target t;
      t.kind = Target::Kind::kAttribute;
      t.name = expect_name();
      advance();  // "."
      t.attr = expect_name();
      return t;
    }
    if (name_only) {
      Target t;
      t.name = expect_name();
      return t;
    }
    ExprPtr e = with_tuple ? parse_tuple(true, true, std::move(extra_end), false) : parse_primary();
    return to_target(*e);
  }

  // ---- expressions -----------------------------------------------------------------------

  bool is_tuple_end(const std::vector<std::string_view>& extra_end) const {
    const Token& t = cur();
    if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd ||
        t.type == TokenType::kEof)
      return true;
    if (t.type == TokenType::kOperator && t.value == ")") return true;
    return t.type == TokenType::kName &&
           std::find(extra_end.begin(), extra_end.end(), t.value) != extra_end.end();
  }

  // A comma-separated list that forms a tuple, or a single expression.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::vector<std::string_view> extra_end,
                      bool explicit_parentheses) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) error("expected an expression, got " + describe(cur()));
    }
    auto node = make<ListExpr>(line);
    node->tuple = true;
    for (auto& item : items) adopt(*node, item.get());
    node->items = std::move(items);
    return node;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const int line = cur().line;
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      advance();
      auto node = make<CondExpr>(line);
      node->test = parse_or();
      if (is_name("else")) {
        advance();
        node->else_expr = parse_condexpr();
      }
      node->then_expr = std::move(expr);
      adopt(*node, node->test.get());
      adopt(*node, node->then_expr.get());
      adopt(*node, node->else_expr.get());
      expr = std::move(node);
    }
    return expr;
  }

  ExprPtr logical(bool is_and, ExprPtr left, ExprPtr right, int line) {
    auto node = make<Logical>(line);
    node->is_and = is_and;
    adopt(*node, left.get());
    adopt(*node, right.get());
    node->left = std::move(left);
    node->right = std::move(right);
    return node;
  }

  ExprPtr parse_or() {
    const int line = cur().line;
    ExprPtr left = parse_and();
    while (is_name("or")) {
      advance();
      left = logical(false, std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    const int line = cur().line;
    ExprPtr left = parse_not();
    while (is_name("and")) {
      advance();
      left = logical(true, std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr unary(UnaryOp op, ExprPtr operand, int line) {
    auto node = make<Unary>(line);
    node->op = op;
    adopt(*node, operand.get());
    node->operand = std::move(operand);
    return node;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      NestingGuard guard(*this);
      const int line = cur().line;
      advance();
      return unary(UnaryOp::kNot, parse_not(), line);
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    std::vector<std::pair<CompareOp, ExprPtr>> rest;
    while (true) {
      CompareOp op;
      if (cur().type == TokenType::kOperator && (cur().value == "==" || cur().value == "!=" ||
                                                 cur().value == "<" || cur().value == "<=" ||
                                                 cur().value == ">" || cur().value == ">=")) {
        const std::string& v = cur().value;
        op = v == "==" ? CompareOp::kEq
             : v == "!=" ? CompareOp::kNe
             : v == "<"  ? CompareOp::kLt
             : v == "<=" ? CompareOp::kLe
             : v == ">"  ? CompareOp::kGt
                         : CompareOp::kGe;
        advance();
      } else if (is_name("in")) {
        op = CompareOp::kIn;
        advance();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        op = CompareOp::kNotIn;
        advance();
        advance();
      } else {
        break;
      }
      rest.emplace_back(op, parse_math1());
    }
    if (rest.empty()) return first;
    auto node = make<Compare>(line);
    adopt(*node, first.get());
    for (const auto& [op, e] : rest) adopt(*node, e.get());
    node->first = std::move(first);
    node->rest = std::move(rest);
    return node;
  }

  ExprPtr binary(BinaryOp op, ExprPtr left, ExprPtr right, int line) {
    auto node = make<Binary>(line);
    node->op = op;
    adopt(*node, left.get());
    adopt(*node, right.get());
    node->left = std::move(left);
    node->right = std::move(right);
    return node;
  }

  ExprPtr parse_math1() {
    const int line = cur().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const BinaryOp op = is_op("+") ? BinaryOp::kAdd : BinaryOp::kSub;
      advance();
      left = binary(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto node = make<Concat>(line);
    adopt(*node, first.get());
    node->parts.push_back(std::move(first));
    while (is_op("~")) {
      advance();
      node->parts.push_back(parse_math2());
      adopt(*node, node->parts.back().get());
    }
    return node;
  }

  ExprPtr parse_math2() {
    const int line = cur().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const BinaryOp op = is_op("*")    ? BinaryOp::kMul
                          : is_op("/")  ? BinaryOp::kDiv
                          : is_op("//") ? BinaryOp::kFloorDiv
                                        : BinaryOp::kMod;
      advance();
      left = binary(op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    const int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      advance();
      left = binary(BinaryOp::kPow, std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    NestingGuard guard(*this);
    const int line = cur().line;
    ExprPtr node;
    if (is_op("-")) {
      advance();
      node = unary(UnaryOp::kNeg, parse_unary(false), line);
    } else if (is_op("+")) {
      advance();
      node = unary(UnaryOp::kPos, parse_unary(false), line);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(Value v, int line) {
    auto node = make<Literal>(line);
    node->value = std::move(v);
    return node;
  }

  ExprPtr parse_primary() {
    NestingGuard guard(*this);
    const Token& t = cur();
    const int line = t.line;
    switch (t.type) {
      case TokenType::kName: {
        const std::string name = t.value;
        advance();
        if (name == "true" || name == "True") return literal(Value::boolean(true), line);
        if (name == "false" || name == "False") return literal(Value::boolean(false), line);
        if (name == "none" || name == "None") return literal(Value::none(), line);
        for (MacroDef* def : macros_) {
          if (name == "varargs") def->uses_varargs = true;
          if (name == "kwargs") def->uses_kwargs = true;
          if (name == "caller") def->uses_caller = true;
        }
        auto node = make<Name>(line);
        node->name = name;
        return node;
      }
      case TokenType::kString: {
        std::string text;
        while (cur().type == TokenType::kString) {  // adjacent literals concatenate
          text += cur().value;
          advance();
        }
        return literal(Value::string(std::move(text)), line);
      }
      case TokenType::kInteger: {
        const int64_t v = t.int_value;
        advance();
        return literal(Value::integer(v), line);
      }
      case TokenType::kFloat: {
        const double v = t.float_value;
        advance();
        return literal(Value::floating(v), line);
      }
      case TokenType::kOperator:
        if (t.value == "(") {
          advance();
          ExprPtr e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.value == "[") return parse_list();
        if (t.value == "{") return parse_dict();
        break;
      default:
        break;
    }
    error("unexpected " + describe(t));
  }

  ExprPtr parse_list() {
    auto node = make<ListExpr>(cur().line);
    advance();
    while (!is_op("]")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op("]")) break;
      node->items.push_back(parse_expression(true));
      adopt(*node, node->items.back().get());
    }
    advance();
    return node;
  }

  ExprPtr parse_dict() {
    auto node = make<DictExpr>(cur().line);
    advance();
    while (!is_op("}")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op("}")) break;
      ExprPtr key = parse_expression(true);
      expect_op(":");
      ExprPtr value = parse_expression(true);
      adopt(*node, key.get());
      adopt(*node, value.get());
      node->items.emplace_back(std::move(key), std::move(value));
    }
    advance();
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object) {
    const int line = cur().line;
    if (is_op(".")) {
      advance();
      const Token& t = cur();
      if (t.type == TokenType::kName) {
        auto node = make<GetAttr>(line);
        node->name = t.value;
        advance();
        adopt(*node, object.get());
        node->object = std::move(object);
        return node;
      }
      if (t.type == TokenType::kInteger) {
        auto node = make<GetItem>(line);
        node->key = literal(Value::integer(t.int_value), line);
        advance();
        adopt(*node, object.get());
        node->object = std::move(object);
        return node;
      }
      error("expected a name or number after '.', got " + describe(t));
    }
    advance();  // "["
    NestingGuard guard(*this);
    std::vector<ExprPtr> keys;
    std::unique_ptr<SliceExpr> slice_node;
    while (!is_op("]")) {
      if (!keys.empty() || slice_node) expect_op(",");
      if (slice_node) error("slices cannot be combined with other subscripts");
      ExprPtr start;
      if (!is_op(":")) {
        start = parse_expression(true);
        if (!is_op(":")) {
          keys.push_back(std::move(start));
          continue;
        }
      }
      if (!keys.empty()) error("slices cannot be combined with other subscripts");
      advance();  // ":"
      slice_node = make<SliceExpr>(line);
      slice_node->start = std::move(start);
      if (!is_op("]") && !is_op(",") && !is_op(":")) slice_node->stop = parse_expression(true);
      if (is_op(":")) {
        advance();
        if (!is_op("]") && !is_op(",")) slice_node->step = parse_expression(true);
      }
    }
    advance();  // "]"
    if (slice_node) {
      adopt(*slice_node, object.get());
      adopt(*slice_node, slice_node->start.get());
      adopt(*slice_node, slice_node->stop.get());
      adopt(*slice_node, slice_node->step.get());
      slice_node->object = std::move(object);
      return slice_node;
    }
    if (keys.empty()) error("expected a subscript");
    auto node = make<GetItem>(line);
    if (keys.size() == 1) {
      node->key = std::move(keys[0]);
    } else {
      auto tuple = make<ListExpr>(line);
      tuple->tuple = true;
      for (auto& k : keys) adopt(*tuple, k.get());
      tuple->items = std::move(keys);
      node->key = std::move(tuple);
    }
    adopt(*node, object.get());
    adopt(*node, node->key.get());
    node->object = std::move(object);
    return node;
  }

  ArgList parse_call_args() {
    NestingGuard guard(*this);
    ArgList args;
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*")) {
        advance();
        args.star = parse_expression(true);
      } else if (is_op("**")) {
        advance();
        args.star_star = parse_expression(true);
      } else if (cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
                 peek().value == "=") {
        if (args.star_star) error("invalid syntax for function call expression");
        std::string key = cur().value;
        advance();
        advance();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!args.keyword.empty() || args.star || args.star_star)
          error("positional argument follows keyword argument");
        args.positional.push_back(parse_expression(true));
      }
    }
    advance();
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto node = make<Call>(cur().line);
    node->args = parse_call_args();
    adopt(*node, callee.get());
    adopt_args(*node, node->args);
    node->callee = std::move(callee);
    return node;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      advance();
      name += '.';
      name += expect_name();
    }
    return name;
  }

  FilterCall parse_one_filter() {
    FilterCall f;
    f.line = cur().line;
    f.name = parse_dotted_name();
    f.fn = find_filter(f.name);
    if (is_op("(")) f.args = parse_call_args();
    return f;
  }

  std::vector<FilterCall> parse_filter_chain(bool start_inline) {
    std::vector<FilterCall> chain;
    while (start_inline || is_op("|")) {
      if (!start_inline) advance();
      start_inline = false;
      chain.push_back(parse_one_filter());
    }
    return chain;
  }

  ExprPtr parse_filter(ExprPtr operand) {
    while (is_op("|")) {
      advance();
      auto node = make<Filter>(cur().line);
      node->filter = parse_one_filter();
      adopt(*node, operand.get());
      adopt_args(*node, node->filter.args);
      node->operand = std::move(operand);
      operand = std::move(node);
    }
    return operand;
  }

  ExprPtr parse_test(ExprPtr operand) {
    const int line = cur().line;
    advance();  // "is"
    bool negated = false;
    if (is_name("not")) {
      advance();
      negated = true;
    }
    auto node = make<Test>(line);
    node->name = parse_dotted_name();
    node->fn = find_test(node->name);
    const Token& t = cur();
    if (is_op("(")) {
      node->args = parse_call_args();
    } else if ((t.type == TokenType::kName || t.type == TokenType::kString ||
                t.type == TokenType::kInteger || t.type == TokenType::kFloat || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      // `x is divisibleby 3`: one argument without parentheses.
      if (is_name("is")) error("you cannot chain multiple tests with 'is'");
      NestingGuard guard(*this);
      node->args.positional.push_back(parse_postfix(parse_primary()));
    }
    adopt(*node, operand.get());
    adopt_args(*node, node->args);
    node->operand = std::move(operand);
    if (negated) return unary(UnaryOp::kNot, std::move(node), line);
    return node;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int nesting_ = 0;
  int loop_depth_ = 0;
  std::vector<MacroDef*> macros_;
  std::vector<std::pair<std::string, int>> open_blocks_;
};

}  // namespace

std::unique_ptr<Template> parse_template(std::string_view source, const LexerOptions& options) {
  return Parser(tokenize(source, options)).parse();
}

}  // namespace vllm::jinja
