// Unit tests of the Jinja2 interpreter, family by family. Expected strings are what jinja2 3.1
// produces in transformers' environment (checked against it while writing these tests).
#include <gtest/gtest.h>

#include <string>

#include "vllm/chat/chat_template.h"
#include "vllm/core/error.h"

namespace {

using ojson = nlohmann::ordered_json;

std::string R(const std::string& source, const ojson& context = ojson::object()) {
  return vllm::ChatTemplate(source).render(context);
}

// The message of the vllm::Error that parsing or rendering raises ("" if none).
std::string E(const std::string& source, const ojson& context = ojson::object()) {
  try {
    vllm::ChatTemplate(source).render(context);
  } catch (const vllm::Error& e) {
    EXPECT_EQ(e.kind(), vllm::ErrorKind::kInvalidArgument);
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << source;
  return "";
}

// ---- printing: {{ x }} is Python's str(x) ------------------------------------------------------

TEST(JinjaPrint, ScalarsLikePython) {
  EXPECT_EQ(R("{{ 1 }}|{{ 1.0 }}|{{ 1.5e3 }}|{{ 1e-5 }}|{{ 1e16 }}|{{ -0.0 }}|{{ 0.1 + 0.2 }}"),
            "1|1.0|1500.0|1e-05|1e+16|-0.0|0.30000000000000004");
  EXPECT_EQ(R("{{ true }}|{{ True }}|{{ none }}|{{ None }}|{{ false }}"), "True|True|None|None|False");
  EXPECT_EQ(R("{{ 123456789012345.6 }}|{{ 1/3 }}|{{ 1.5e300 * 1e10 }}"),
            "123456789012345.6|0.3333333333333333|inf");
}

TEST(JinjaPrint, ContainersUseRepr) {
  EXPECT_EQ(R("{{ [1, 'a', none, true, 1.5] }}"), "[1, 'a', None, True, 1.5]");
  EXPECT_EQ(R("{{ {'a': 1, 'b': [2]} }}|{{ (1,) }}|{{ (1, 2) }}|{{ () }}"),
            "{'a': 1, 'b': [2]}|(1,)|(1, 2)|()");
  EXPECT_EQ(R(R"({{ ['it\'s', 'say "hi"', 'both \' "'] }})"),
            R"(["it's", 'say "hi"', 'both \' "'])");
  EXPECT_EQ(R(R"({{ ['a\nb\tc\\', '\x01', 'é', '\u200b', '\xa0'] }})"),
            R"(['a\nb\tc\\', '\x01', 'é', '\u200b', '\xa0'])");
  EXPECT_EQ(R("{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}", {{"d", {{"a", 1}, {"b", 2}}}}),
            "dict_items([('a', 1), ('b', 2)])|dict_keys(['a', 'b'])|dict_values([1, 2])");
  EXPECT_EQ(R("{% set ns = namespace(a=1) %}{{ ns }}"), "<Namespace {'a': 1}>");
}

TEST(JinjaPrint, UndefinedPrintsEmpty) {
  EXPECT_EQ(R("[{{ x }}][{{ y.z }}][{{ y['z'] }}]", {{"y", ojson::object()}}), "[][][]");
}

// ---- literals ------------------------------------------------------------------------------------

TEST(JinjaLiterals, StringEscapesAndNumbers) {
  EXPECT_EQ(R(R"({{ 'a' 'b' }}|{{ '\x41\u00e9\U0001F600\101' }}|{{ '\q' }})"), "ab|Aé😀A|\\q");
  EXPECT_EQ(R("{{ 0x1F }}|{{ 0o17 }}|{{ 0b101 }}|{{ 1_000 }}|{{ 1_0.5 }}|{{ 2.5e+2 }}"),
            "31|15|5|1000|10.5|250.0");
  EXPECT_EQ(R("{{ \"double \\\"quoted\\\"\" }}"), "double \"quoted\"");
}

// ---- operators -----------------------------------------------------------------------------------

TEST(JinjaOperators, ArithmeticFollowsPython) {
  EXPECT_EQ(R("{{ 1 + 2 * 3 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}"),
            "7|64|4|3|-4");
  EXPECT_EQ(R("{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 7 / 2 }}|{{ 6 / 2 }}|{{ 7.5 // 2 }}|{{ -7.5 % 2 }}"),
            "2|-2|3.5|3.0|3.0|0.5");
  EXPECT_EQ(R("{{ 2 ** -1 }}|{{ 10 - 2.5 }}|{{ true + 1 }}|{{ 'ab' * 3 }}|{{ 3 * [1] }}"),
            "0.5|7.5|2|ababab|[1, 1, 1]");
  EXPECT_EQ(R("{{ [1] + [2] }}|{{ (1,) + (2,) }}|{{ 'a' + 'b' }}"), "[1, 2]|(1, 2)|ab");
}

TEST(JinjaOperators, ConcatComparisonLogic) {
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none ~ x ~ [1] }}"), "a1None[1]");
  EXPECT_EQ(R("{{ 1 < 2 < 3 }}|{{ 1 < 3 < 2 }}|{{ 'a' < 'b' }}|{{ [1,2] < [1,3] }}"),
            "True|False|True|True");
  EXPECT_EQ(R("{{ 1 == 1.0 }}|{{ 1 == true }}|{{ 'a' != 'a' }}|{{ x == y }}|{{ x == none }}"),
            "True|True|False|True|False");
  EXPECT_EQ(R("{{ 'a' in 'abc' }}|{{ 1 in [1,2] }}|{{ 'k' in {'k': 1} }}|{{ 3 not in [1] }}"),
            "True|True|True|True");
  EXPECT_EQ(R("{{ 1 and 2 }}|{{ 0 and 2 }}|{{ 0 or 'b' }}|{{ '' or [] }}|{{ not 0 }}"),
            "2|0|b|[]|True");
  EXPECT_EQ(R("{{ 'a' if x else 'b' }}|{{ 'a' if 1 }}|{{ ('a' if 0) is defined }}"), "b|a|False");
}

TEST(JinjaOperators, FilterBindsTighterThanArithmetic) {
  EXPECT_EQ(R("{{ xs|length - 1 }}|{{ -3|abs }}|{{ (-3)|abs }}", {{"xs", {1, 2}}}), "1|3|3");
}

// ---- attribute access, subscripts, slicing ---------------------------------------------------------

TEST(JinjaAccess, AttributesAndItemsAreEquivalentForDicts) {
  const ojson ctx = {{"m", {{"role", "user"}}}, {"l", {1, 2, 3}}};
  EXPECT_EQ(R("{{ m.role }}|{{ m['role'] }}|{{ m.missing is defined }}|{{ l[0] }}|{{ l[-1] }}"
              "|{{ l[5] is defined }}|{{ l.0 }}",
              ctx),
            "user|user|False|1|3|False|1");
  // A dict method name wins over a key for `.` access, the key wins for [].
  EXPECT_EQ(R("{{ d.items is defined }}|{{ d['items'] }}", {{"d", {{"items", 7}}}}), "True|7");
}

TEST(JinjaAccess, Slicing) {
  const ojson ctx = {{"l", {1, 2, 3, 4}}, {"s", "héllo"}};
  EXPECT_EQ(R("{{ l[1:] }}|{{ l[::-1] }}|{{ l[:-1] }}|{{ l[::2] }}|{{ l[10:] }}|{{ l[3:0:-1] }}",
              ctx),
            "[2, 3, 4]|[4, 3, 2, 1]|[1, 2, 3]|[1, 3]|[]|[4, 3, 2]");
  EXPECT_EQ(R("{{ s[1:3] }}|{{ s[::-1] }}|{{ s[-2:] }}|{{ s[1] }}", ctx), "él|olléh|lo|é");
  EXPECT_EQ(R("{{ s[0] }}{{ s[-1] }}|{{ s|length }}", {{"s", "日本語"}}), "日語|3");
}

TEST(JinjaAccess, UndefinedFollowsJinjaDefaultUndefined) {
  EXPECT_EQ(R("{{ x|string }}|{{ x ~ 'a' }}|{{ x|upper }}|{% if x %}y{% else %}n{% endif %}"
              "|{% for i in x %}{{ i }}{% endfor %}|{{ x|length }}|{{ 'a' in x }}"),
            "|a||n||0|False");
  EXPECT_EQ(R("{{ none.x }}|{{ none['x'] }}|{{ d.a is defined }}", {{"d", ojson::object()}}),
            "||False");
  EXPECT_EQ(E("{{ x.y }}"), "line 1: 'x' is undefined");
  EXPECT_EQ(E("{{ x + 1 }}"), "line 1: 'x' is undefined");
  EXPECT_EQ(E("{{ x['k'] }}"), "line 1: 'x' is undefined");
  EXPECT_EQ(E("{{ x() }}"), "line 1: 'x' is undefined");
  EXPECT_EQ(E("\n{{ d.a.b }}", {{"d", ojson::object()}}), "line 2: 'dict object' has no attribute 'a'");
  EXPECT_EQ(E("{{ x|tojson }}"), "line 1: Object of type Undefined is not JSON serializable");
}

// ---- loops -----------------------------------------------------------------------------------------

TEST(JinjaLoops, LoopVariables) {
  EXPECT_EQ(R("{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/"
              "{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/"
              "{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}",
              {{"xs", {"a", "b", "c"}}}),
            "1/0/3/2/True/False/3//b;2/1/2/1/False/False/3/a/c;3/2/1/0/False/True/3/b/;");
  EXPECT_EQ(R("{% for x in [1, 2, 3] %}{{ loop.cycle('odd', 'even') }}{% endfor %}"), "oddevenodd");
  EXPECT_EQ(R("{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}"),
            "121");
}

TEST(JinjaLoops, ElseFilterBreakContinue) {
  EXPECT_EQ(R("{% for x in [1, 2, 3] if x > 1 %}{{ x }}:{{ loop.index }}:{{ loop.last }};"
              "{% else %}none{% endfor %}"),
            "2:1:False;3:2:True;");
  EXPECT_EQ(R("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for x in [1, 2] if x > 5 %}{% else %}filtered{% endfor %}"), "filtered");
  EXPECT_EQ(R("{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}"
              "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "13");
}

TEST(JinjaLoops, IterationAndUnpacking) {
  const ojson d = {{"b", 1}, {"a", 2}};  // insertion order is kept
  EXPECT_EQ(R("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", d}}), "b=1;a=2;");
  EXPECT_EQ(R("{% for k in d %}{{ k }}{% endfor %}|{% for c in 'ab' %}{{ c }}.{% endfor %}",
              {{"d", d}}),
            "ba|a.b.");
  EXPECT_EQ(R("{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}"), "37");
  EXPECT_EQ(R("{% for x in xs|sort %}{{ x }}{% endfor %}", {{"xs", {3, 1, 2}}}), "123");
  EXPECT_EQ(E("{% for a, b in [[1, 2, 3]] %}{% endfor %}"),
            "line 1: too many values to unpack (expected 2)");
  EXPECT_EQ(E("{% for x in 5 %}{% endfor %}"), "line 1: 'int' object is not iterable");
}

TEST(JinjaLoops, NestedAndRecursive) {
  EXPECT_EQ(R("{% for x in [[1, 2], [3]] %}{% set outer = loop %}{% for y in x %}"
              "{{ outer.index }}.{{ loop.index }} {% endfor %}{% endfor %}"),
            "1.1 1.2 2.1 ");
  const ojson tree = {{{"name", "a"}, {"children", {{{"name", "b"}, {"children", ojson::array()}}}}},
                      {{"name", "c"}}};
  EXPECT_EQ(R("{% for item in tree recursive %}[{{ item.name }}{% if item.children %}"
              "{{ loop(item.children) }}{% endif %}:{{ loop.depth }}]{% endfor %}",
              {{"tree", tree}}),
            "[a[b:2]:1][c:1]");
}

// ---- assignment and scoping -------------------------------------------------------------------------

TEST(JinjaScoping, SetInsideLoopDoesNotLeak) {
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}"),
            "12121");
  EXPECT_EQ(R("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(R("{% set x = x + 1 %}{{ x }}", {{"x", 1}}), "2");
}

TEST(JinjaScoping, NamespaceCarriesStateOutOfLoops) {
  EXPECT_EQ(R("{% set ns = namespace(c=0, items=[]) %}{% for i in [1, 2, 3] %}"
              "{% set ns.c = ns.c + i %}{% set ns.items = ns.items + [i] %}{% endfor %}"
              "{{ ns.c }} {{ ns.items }} {{ ns['c'] }}"),
            "6 [1, 2, 3] 6");
  EXPECT_EQ(R("{% set ns = namespace({'x': 2}, y=3) %}{{ ns.x }}{{ ns.y }}"), "23");
  EXPECT_EQ(E("{% set d = {} %}{% set d.x = 1 %}"),
            "line 1: cannot assign attribute on non-namespace object");
}

TEST(JinjaScoping, BlockSetWithAndFilterBlocks) {
  EXPECT_EQ(R("{% set x %}hello {{ 1 + 1 }}{% endset %}[{{ x }}]"), "[hello 2]");
  EXPECT_EQ(R("{% set x | upper %}hello{% endset %}[{{ x }}]"), "[HELLO]");
  EXPECT_EQ(R("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
  EXPECT_EQ(R("{% filter upper %}abc{{ 'd' }}{% endfilter %}"), "ABCD");
  EXPECT_EQ(R("{% generation %}gen {{ 1 }}{% endgeneration %}"), "gen 1");
  EXPECT_EQ(R("{% block b %}in block {{ x }}{% endblock %}", {{"x", 1}}), "in block 1");
}

// ---- macros -------------------------------------------------------------------------------------

TEST(JinjaMacros, DefaultsKeywordsVarargs) {
  EXPECT_EQ(R("{% macro f(a, b=2, c='x') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}"
              "{{ f(1) }}|{{ f(1, 3) }}|{{ f(1, c='y') }}|{{ f(a=5) }}"),
            "1-2-x|1-3-x|1-2-y|5-2-x");
  EXPECT_EQ(R("{% macro f() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, k=3) }}"),
            "(1, 2){'k': 3}");
  EXPECT_EQ(R("{% macro f(a, b=a) %}{{ b }}{% endmacro %}{{ f(3) }}"), "3");
  EXPECT_EQ(E("{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}"),
            "line 1: macro 'f' takes not more than 1 argument(s)");
  EXPECT_EQ(E("{% macro f(a) %}{% endmacro %}{{ f(b=1) }}"),
            "line 1: macro 'f' takes no keyword argument 'b'");
}

TEST(JinjaMacros, CallerRecursionAndClosures) {
  EXPECT_EQ(R("{% macro f(a) %}<{{ caller() }}>{% endmacro %}{% call f(1) %}inner{% endcall %}"),
            "<inner>");
  EXPECT_EQ(R("{% macro f() %}{{ caller(5) }}{% endmacro %}{% call(x) f() %}got {{ x }}{% endcall %}"),
            "got 5");
  EXPECT_EQ(R("{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }}"),
            "54321");
  // Macros see the template's variables as they are when called.
  EXPECT_EQ(R("{% set x = 5 %}{% macro f() %}{{ x }}{% endmacro %}{% set x = 6 %}{{ f() }}"), "6");
  EXPECT_EQ(R("{% for i in [1, 2] %}{% macro f() %}{{ i }}{% endmacro %}{{ f() }}{% endfor %}"), "12");
  EXPECT_EQ(R("{% macro outer() %}{% macro inner() %}I{% endmacro %}{{ inner() }}O{% endmacro %}"
              "{{ outer() }}"),
            "IO");
}

// ---- whitespace control -----------------------------------------------------------------------------

TEST(JinjaWhitespace, TrimAndLstripBlocksAsTransformersSetsThem) {
  EXPECT_EQ(R("  {% if true %}\n    yes\n  {% endif %}\nend"), "    yes\nend");
  EXPECT_EQ(R("{% for x in [1,2] %}\n  {{ x }}\n{% endfor %}\n"), "  1\n  2\n");
  EXPECT_EQ(R("x {# c #}\ny"), "x y");     // trim_blocks eats the newline after a comment
  EXPECT_EQ(R("  {# c #}\ny"), "y");       // lstrip_blocks strips before comments too
  EXPECT_EQ(R("  {{ 'x' }}  {% if true %}  y  {% endif %}  "), "  x    y    ");
}

TEST(JinjaWhitespace, ManualControl) {
  EXPECT_EQ(R("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(R("a\n  {%- if true -%}\n  b\n  {%- endif -%}\n  c"), "abc");
  EXPECT_EQ(R("a\n  {%+ if true %}b{% endif %}"), "a\n  b");  // + keeps the indentation
  EXPECT_EQ(R("{% if true +%}\nb{% endif %}"), "\nb");        // + keeps the newline
  EXPECT_EQ(R("a\n{#- c -#}\nb"), "ab");
}

TEST(JinjaWhitespace, NewlinesRawAndTrailingNewline) {
  EXPECT_EQ(R("line\n"), "line");        // keep_trailing_newline=False drops one
  EXPECT_EQ(R("line\n\n"), "line\n");
  EXPECT_EQ(R("a\r\nb\rc"), "a\nb\nc");  // newlines are normalised
  EXPECT_EQ(R("{% raw %}{{ not processed }}{% endraw %}"), "{{ not processed }}");
  EXPECT_EQ(R("{% raw %}\n  a {% endraw %}\nb"), "\n  a b");
  EXPECT_EQ(R("{{ 'x' ~ '}}' }}|{{ '{{' }}|{% if '%}' %}y{% endif %}"), "x}}|{{|y");
  EXPECT_EQ(R("{% set x = {'a': {'b': 1}} %}{{ x }}"), "{'a': {'b': 1}}");
}

// ---- filters --------------------------------------------------------------------------------------

TEST(JinjaFilters, ToJsonMatchesTransformers) {
  const ojson d = {{"b", 1}, {"a", {1, 2.5, nullptr, true, "x\"y\\z\n\t\u00e9\u2028\x01"}}};
  EXPECT_EQ(R("{{ d|tojson }}", {{"d", d}}),
            "{\"b\": 1, \"a\": [1, 2.5, null, true, \"x\\\"y\\\\z\\n\\t\u00e9\u2028\\u0001\"]}");
  EXPECT_EQ(R("{{ d|tojson(indent=2) }}", {{"d", {{"b", 1}, {"a", {1, ojson::object(), ojson::array()}}}}}),
            "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    {},\n    []\n  ]\n}");
  EXPECT_EQ(R("{{ d|tojson(sort_keys=true) }}", {{"d", {{"b", 1}, {"a", 2}}}}), "{\"a\": 2, \"b\": 1}");
  EXPECT_EQ(R("{{ d|tojson(ensure_ascii=true) }}", {{"d", {"é", "😀"}}}),
            "[\"\\u00e9\", \"\\ud83d\\ude00\"]");
  EXPECT_EQ(R("{{ {'a': [1, 2]}|tojson(separators=(',', ':')) }}"), "{\"a\":[1,2]}");
  EXPECT_EQ(R("{{ 1.0|tojson }}|{{ 1e20|tojson }}|{{ none|tojson }}|{{ (1, 2)|tojson }}"
              "|{{ {1: 'a', true: 'b', none: 'c'}|tojson }}"),
            "1.0|1e+20|null|[1, 2]|{\"1\": \"b\", \"null\": \"c\"}");  // 1 == true as keys
  EXPECT_EQ(R("<{{ '<b>&'|tojson }}>"), "<\"<b>&\">");  // no HTML escaping, unlike jinja2's own
}

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(R("{{ '  a b  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'hELLO wORLD'|capitalize }}"
              "|{{ 'aBc'|upper }}|{{ 'aBc'|lower }}"),
            "a b|a|Hello world|ABC|abc");
  EXPECT_EQ(R("{{ \"they're bill's friends-from (the) [uk]\"|title }}"),
            "They're Bill's Friends-From (The) [Uk]");
  EXPECT_EQ(R("{{ 'abc'|replace('b', 'X') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'abc'|replace('', '-') }}"),
            "aXc|bba|-a-b-c-");
  EXPECT_EQ(R("{{ 'a b  c'|wordcount }}|{{ 'héllo wörld_x 1'|wordcount }}"), "3|3");
  EXPECT_EQ(R("{{ 'line1\nline2\n\nline4'|indent }}|{{ 'a\nb'|indent(2, true) }}"
              "|{{ 'a\n\nb'|indent(2, blank=true) }}|{{ 'a\nb'|indent('> ') }}"),
            "line1\n    line2\n\n    line4|  a\n  b|a\n  \n  b|a\n> b");
  EXPECT_EQ(R("{{ 'abcdefghijklmnop'|truncate(10) }}|{{ 'abc def ghi jkl mno'|truncate(9) }}"
              "|{{ 'abc def ghi jkl mno'|truncate(9, true) }}"),
            "abcdefg...|abc...|abc de...");
  EXPECT_EQ(R("{{ 'abc'|center(9) }}|{{ 'ab'|center(7) }}|{{ 3|string }}|{{ none|string }}"),
            "   abc   |   ab  |3|None");
  EXPECT_EQ(R("{{ '<b>\"x\" & \\'y\\'</b>'|e }}|{{ '<a href=\"x\">T</a> &amp; more'|striptags }}"),
            "&lt;b&gt;&#34;x&#34; &amp; &#39;y&#39;&lt;/b&gt;|T & more");
  EXPECT_EQ(R("{{ 'a/b c&d'|urlencode }}|{{ {'a': 'b c', 'd': 1}|urlencode }}"),
            "a/b%20c%26d|a=b+c&d=1");
  EXPECT_EQ(R("{{ '%s-%d-%.2f-%5s|%-5s|%05d|%x|%r' % ('w', 3, 3.14159, 'ab', 'ab', 42, 255, 'q') }}"),
            "w-3-3.14-   ab|ab   |00042|ff|'q'");
  EXPECT_EQ(R("{{ '%(a)s-%(b)s' % {'a': 1, 'b': 2} }}|{{ '%s %s'|format(1, 2) }}|{{ '%(x)s'|format(x=5) }}"),
            "1-2|1 2|5");
}

TEST(JinjaFilters, Sequences) {
  EXPECT_EQ(R("{{ [3,1,2]|sort }}|{{ [3,1,2]|sort(reverse=true) }}|{{ ['b','A','c']|sort }}"
              "|{{ ['b','A','c']|sort(case_sensitive=true) }}"),
            "[1, 2, 3]|[3, 2, 1]|['A', 'b', 'c']|['A', 'b', 'c']");
  const ojson xs = {{{"n", 2}, {"m", "a"}}, {{"n", 1}, {"m", "b"}}, {{"n", 2}, {"m", "0"}}};
  EXPECT_EQ(R("{{ xs|sort(attribute='n')|map(attribute='m')|join }}|{{ xs|sort(attribute='n,m')|map(attribute='m')|join }}",
              {{"xs", xs}}),
            "ba0|b0a");
  EXPECT_EQ(R("{{ [1,2,3]|first }}|{{ [1,2,3]|last }}|{{ []|first }}|{{ 'abc'|first }}|{{ 'abc'|last }}"),
            "1|3||a|c");
  EXPECT_EQ(R("{{ [1,2,3]|join(',') }}|{{ [1,none,'a']|join }}|{{ xs|join(', ', attribute='n') }}",
              {{"xs", xs}}),
            "1,2,3|1Nonea|2, 1, 2");
  EXPECT_EQ(R("{{ [1,2,3]|length }}|{{ 'héllo'|length }}|{{ {'a':1}|count }}|{{ x|length }}"), "3|5|1|0");
  EXPECT_EQ(R("{{ 'abc'|list }}|{{ {'a':1,'b':2}|list }}|{{ (1,2)|list }}"),
            "['a', 'b', 'c']|['a', 'b']|[1, 2]");
  EXPECT_EQ(R("{{ [1,2,2,3,1]|unique|list }}|{{ ['a','A','b']|unique|list }}"), "[1, 2, 3]|['a', 'b']");
  EXPECT_EQ(R("{{ [3,1,2]|max }}|{{ [3,1,2]|min }}|{{ ['b','A']|max }}|{{ [1,2,3]|sum }}"
              "|{{ [1.5,2]|sum(start=10) }}"),
            "3|1|b|6|13.5");
  EXPECT_EQ(R("{{ [1,2,3,4,5]|batch(2)|list }}|{{ [1,2,3,4,5]|batch(2, 'x')|list }}"
              "|{{ [1,2,3,4,5]|slice(2)|list }}"),
            "[[1, 2], [3, 4], [5]]|[[1, 2], [3, 4], [5, 'x']]|[[1, 2, 3], [4, 5]]");
  EXPECT_EQ(R("{{ [1,2,3]|reverse|list }}|{{ 'abc'|reverse }}|{{ {'b':1,'a':2}|dictsort }}"
              "|{{ {'b':1,'a':2}|dictsort(by='value') }}"),
            "[3, 2, 1]|cba|[('a', 2), ('b', 1)]|[('b', 1), ('a', 2)]");
  EXPECT_EQ(R("{{ {'a': 1}|items|list }}|{{ x|items|list }}"), "[('a', 1)]|[]");
}

TEST(JinjaFilters, SelectRejectMap) {
  const ojson ms = {{{"role", "user"}, {"content", "a"}},
                    {{"role", "assistant"}, {"content", "b"}, {"tc", {1}}},
                    {{"role", "user"}, {"content", "c"}, {"tc", ojson::array()}}};
  EXPECT_EQ(R("{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|join }}"
              "|{{ ms|rejectattr('role', 'eq', 'user')|map(attribute='content')|list }}"
              "|{{ ms|selectattr('tc')|list|length }}|{{ ms|selectattr('tc', 'defined')|list|length }}",
              {{"ms", ms}}),
            "ac|['b']|1|2");
  EXPECT_EQ(R("{{ [1,2,3,4]|select('odd')|list }}|{{ [1,2,3,4]|reject('even')|list }}"
              "|{{ [0,1,'',none,'a']|select|list }}|{{ [1,2,3]|select('>', 1)|list }}"
              "|{{ [1,2,3]|select('divisibleby', 3)|list }}"),
            "[1, 3]|[1, 3]|[1, 'a']|[2, 3]|[3]");
  EXPECT_EQ(R("{{ ['a','b']|map('upper')|list }}|{{ ['1','2']|map('int')|sum }}"
              "|{{ xs|map(attribute='a', default='z')|list }}|{{ xs[:1]|map(attribute='a.b')|list }}",
              {{"xs", {{{"a", {{"b", 1}}}}, ojson::object()}}}),
            "['A', 'B']|3|[{'b': 1}, 'z']|[1]");
  EXPECT_EQ(R("{% for g in xs|groupby('k') %}{{ g.grouper }}:{{ g.list|length }};{% endfor %}"
              "|{% for k, items in xs|groupby('k') %}{{ k }}{{ items|map(attribute='v')|join }}{% endfor %}",
              {{"xs", {{{"k", "b"}, {"v", 1}}, {{"k", "a"}, {"v", 2}}, {{"k", "b"}, {"v", 3}}}}}),
            "a:1;b:2;|a2b13");
}

TEST(JinjaFilters, NumbersAndDefaults) {
  EXPECT_EQ(R("{{ -3|abs }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.675|round(2) }}"
              "|{{ 1.5|round(0, 'floor') }}|{{ 1.2|round(0, 'ceil') }}|{{ 1234|round(-2) }}|{{ 3|round }}"),
            "3|2.0|4.0|2.67|1.0|2.0|1200|3");
  EXPECT_EQ(R("{{ '42'|int }}|{{ '42.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(5) }}|{{ '0x1A'|int(0, 16) }}"
              "|{{ ' 12 '|int }}|{{ 3.9|int }}|{{ true|int }}|{{ none|int }}|{{ '1_000'|int }}"),
            "42|42|0|5|26|12|3|1|0|1000");
  EXPECT_EQ(R("{{ '3.5'|float }}|{{ 'x'|float }}|{{ 3|float }}|{{ '1e3'|float }}|{{ 'inf'|float }}"),
            "3.5|0.0|3.0|1000.0|inf");
  EXPECT_EQ(R("{{ x|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ none|d('n') }}"
              "|{{ 0|default(5, boolean=true) }}|{{ 'x'|safe }}|{{ [1,2]|pprint }}"),
            "d||d|None|5|x|[1, 2]");
  EXPECT_EQ(R("{{ 'x'|attr('upper')() }}|{{ d|attr('a') }}", {{"d", {{"a", 1}}}}), "X|");
}

// ---- tests -------------------------------------------------------------------------------------------

TEST(JinjaTests, TypeTests) {
  EXPECT_EQ(R("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 1 is number }}"
              "{{ 1.5 is float }}{{ 1 is integer }}{{ true is integer }}{{ true is number }}"
              "{{ true is boolean }}"),
            "FalseTrueTrueTrueTrueTrueFalseTrueTrue");
  EXPECT_EQ(R("{{ 'a' is string }}{{ {} is mapping }}{{ [] is mapping }}{{ [] is iterable }}"
              "{{ 'a' is iterable }}{{ 1 is iterable }}{{ [] is sequence }}{{ {} is sequence }}"
              "{{ x is iterable }}"),
            "TrueTrueFalseTrueTrueFalseTrueTrueTrue");
  EXPECT_EQ(R("{{ range is callable }}{{ 'x'.upper is callable }}{{ 1 is callable }}"
              "{{ x is not defined }}{{ not x is defined }}"),
            "TrueTrueFalseTrueTrue");
}

TEST(JinjaTests, ValueTests) {
  EXPECT_EQ(R("{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}"
              "{{ 1 is eq 1 }}{{ 1 is equalto 2 }}{{ 2 is gt 1 }}{{ 2 is lt 1 }}{{ 2 is ge 2 }}"
              "{{ 2 is le 1 }}{{ 2 is ne 1 }}"),
            "TrueTrueTrueFalseTrueFalseTrueFalseTrueFalseTrue");
  EXPECT_EQ(R("{{ 2.5 is odd }}{{ 2.5 is even }}{{ 3.0 is odd }}{{ 4.5 is divisibleby 1.5 }}"),
            "FalseFalseTrueTrue");
  EXPECT_EQ(R("{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}"
              "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aB' is lower }}{{ 1 is in [1,2] }}"
              "{{ none is sameas none }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ 'nope' is filter }}"),
            "TrueFalseTrueFalseTrueTrueFalseTrueTrueTrueTrueFalse");
}

// ---- methods -----------------------------------------------------------------------------------------

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(R("{{ ' a '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}"
              "|{{ '\\n\\nx\\n'.lstrip('\\n') }}|{{ 'abcba'.rstrip('ab') }}"),
            "a|a|a|a|x\n|abc");
  EXPECT_EQ(R("{{ 'a,b,,c'.split(',') }}|{{ ' a  b c '.split() }}|{{ 'a,b,c'.split(',', 1) }}"
              "|{{ 'a b c'.split(maxsplit=1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  a b  c  '.split(none, 1) }}"),
            "['a', 'b', '', 'c']|['a', 'b', 'c']|['a', 'b,c']|['a', 'b c']|['a,b', 'c']|['a', 'b  c  ']");
  EXPECT_EQ(R("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}{{ 'abc'.startswith(('x', 'a')) }}"
              "{{ 'abc'.endswith(('x', 'y')) }}{{ 'abc'.startswith('b', 1) }}"),
            "TrueTrueTrueFalseTrue");
  EXPECT_EQ(R("{{ 'hello'.find('l') }}|{{ 'hello'.rfind('l') }}|{{ 'hello'.find('z') }}"
              "|{{ 'héllo'.find('l') }}|{{ 'hello'.count('l') }}|{{ 'hello'.index('e') }}"),
            "2|3|-1|2|2|1");
  EXPECT_EQ(R("{{ 'Hello World'.upper() }}|{{ 'Hello World'.lower() }}|{{ \"they're\".title() }}"
              "|{{ 'hELLO'.capitalize() }}|{{ 'Hello'.swapcase() }}"),
            "HELLO WORLD|hello world|They'Re|Hello|hELLO");
  EXPECT_EQ(R("{{ ', '.join(['a', 'b']) }}|{{ 'a-b'.replace('-', '+') }}|{{ 'abc'.zfill(5) }}"
              "|{{ 'ab'.ljust(4, '*') }}|{{ 'ab'.center(5, '.') }}"),
            "a, b|a+b|00abc|ab**|..ab.");
  EXPECT_EQ(R("{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ 'a=b=c'.partition('=') }}|{{ 'a=b=c'.rpartition('=') }}"
              "|{{ 'prefix_x'.removeprefix('prefix_') }}"),
            "['a', 'b', 'c']|('a', '=', 'b=c')|('a=b', '=', 'c')|x");
  EXPECT_EQ(R("{{ '{} {}'.format(1, 'a') }}|{{ '{0}{1}{0}'.format('a', 'b') }}|{{ '{x}'.format(x=3) }}"
              "|{{ '{:>5}|{:<5}|{:^5}|{:05d}|{:.2f}|{:,}|{!r}'.format('a', 'b', 'c', 42, 3.14159, 1234567, 'q') }}"),
            "1 a|aba|3|    a|b    |  c  |00042|3.14|1,234,567|'q'");
  EXPECT_EQ(R("{{ '123'.isdigit() }}{{ 'abc'.isalpha() }}{{ 'a1'.isalnum() }}{{ '  '.isspace() }}"
              "{{ 'Ab Cd'.istitle() }}{{ ''.isdigit() }}"),
            "TrueTrueTrueTrueTrueFalse");
  EXPECT_EQ(R("{{ content.split('</think>')[-1].lstrip('\\n') }}|{{ content.split('</think>')[0]"
              ".rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
              {{"content", "<think>\nreason\n</think>\n\nanswer"}}),
            "answer|reason");
}

TEST(JinjaMethods, DictAndListMethods) {
  EXPECT_EQ(R("{{ d.get('a') }}|{{ d.get('z', 5) }}|{{ d.get('z') }}|{{ d.keys()|list }}",
              {{"d", {{"a", 1}, {"b", 2}}}}),
            "1|5|None|['a', 'b']");
  // Mutating methods (which transformers' immutable sandbox refuses) are allowed here.
  EXPECT_EQ(R("{% set l = [1, 2] %}{% set _ = l.append(3) %}{{ l }}{{ l.pop() }}{{ l.index(2) }}{{ l.count(1) }}"),
            "[1, 2, 3]311");
  EXPECT_EQ(R("{% set ns = namespace(items=[]) %}{% for i in [1, 2] %}{% set _ = ns.items.append(i) %}"
              "{% endfor %}{{ ns.items }}"),
            "[1, 2]");
  EXPECT_EQ(E("{% set l = [] %}{% set _ = l.append(l) %}"),
            "line 1: cannot store a container inside itself");
}

// ---- globals -----------------------------------------------------------------------------------------

TEST(JinjaGlobals, Builtins) {
  EXPECT_EQ(R("{{ range(3)|list }}|{{ range(10, 0, -3)|list }}|{{ range(2, 4)|join(',') }}"),
            "[0, 1, 2]|[10, 7, 4, 1]|2,3");
  EXPECT_EQ(R("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}"),
            "abab");
  EXPECT_EQ(R("{% set j = joiner('|') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}"), "1|2|3");
  EXPECT_EQ(R("{{ dict(a=1, b=2) }}|{{ namespace(a=1).a }}"), "{'a': 1, 'b': 2}|1");
  const std::string year = R("{{ strftime_now('%Y') }}");
  EXPECT_EQ(year.size(), 4u);
  EXPECT_EQ(R("{{ strftime_now('%d %b %Y')|length }}"), "11");
  EXPECT_EQ(E("{{ range(1000000) }}"),
            "line 1: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
}

TEST(JinjaGlobals, RaiseExceptionMessageIsVerbatim) {
  EXPECT_EQ(E("a\n{{ raise_exception('Roles must alternate: ' ~ 5) }}"),
            "line 2: Roles must alternate: 5");
}

// ---- errors ------------------------------------------------------------------------------------------

TEST(JinjaErrors, SyntaxErrorsCarryTheLine) {
  EXPECT_EQ(E("line one\n{% if x %}\nno end"),
            "line 3: unexpected end of template: the 'if' block opened on line 2 was never closed "
            "(expected 'elif', 'else' or 'endif')");
  EXPECT_EQ(E("{% for x in y %}\n{% endif %}"),
            "line 2: unknown tag 'endif' (expected 'endfor' or 'else' to close the 'for' block "
            "opened on line 1)");
  EXPECT_EQ(E("\n\n{{ x "), "line 3: unexpected end of template: missing '}}'");
  EXPECT_EQ(E("{{ 1 + }}"), "line 1: unexpected end of print statement");
  EXPECT_EQ(E("{{ (1 }}"), "line 1: unexpected '}', expected ')'");
  EXPECT_EQ(E("{{ }}"), "line 1: expected an expression, got end of print statement");
  EXPECT_EQ(E("{# unclosed"), "line 1: missing end of comment tag");
  EXPECT_EQ(E("{% raw %}unclosed"), "line 1: missing end of raw directive");
  EXPECT_EQ(E("{{ 'unterminated }}"), "line 1: unterminated string literal");
  EXPECT_EQ(E("{% break %}"), "line 1: 'break' outside of a loop");
  EXPECT_EQ(E("{% unknowntag %}"), "line 1: unknown tag 'unknowntag'");
  EXPECT_EQ(E("{% set 1 = 2 %}"), "line 1: can't assign to this expression");
  EXPECT_EQ(E("{% include 'x' %}"),
            "line 1: the 'include' tag is not supported: chat templates are single strings");
  EXPECT_EQ(E("{{ f(a=1, 2) }}"), "line 1: positional argument follows keyword argument");
  EXPECT_EQ(E("{{ 1 ! 2 }}"), "line 1: unexpected char '!'");
}

TEST(JinjaErrors, RuntimeErrorsCarryTheLine) {
  // Unknown filters and tests fail when reached, not when parsed.
  EXPECT_EQ(R("{% if false %}{{ x|nosuchfilter }}{% endif %}ok"), "ok");
  EXPECT_EQ(E("a\nb\n{{ x|nosuchfilter }}"), "line 3: no filter named 'nosuchfilter'");
  EXPECT_EQ(E("{{ x is nosuchtest }}"), "line 1: no test named 'nosuchtest'");
  EXPECT_EQ(E("{{ 'a' - 1 }}"), "line 1: unsupported operand type(s) for -: 'str' and 'int'");
  EXPECT_EQ(E("{{ 'a' + 1 }}"), "line 1: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(E("{{ 1 / 0 }}"), "line 1: division by zero");
  EXPECT_EQ(E("{{ 'a' < 1 }}"), "line 1: '<' not supported between instances of 'str' and 'int'");
  EXPECT_EQ(E("{{ 1 in 5 }}"), "line 1: argument of type 'int' is not iterable");
  EXPECT_EQ(E("{{ 'x'(1) }}"), "line 1: 'str' object is not callable");
  EXPECT_EQ(E("{{ 'x'.split(1, 2, 3) }}"), "line 1: split() takes at most 2 argument(s) (3 given)");
  EXPECT_EQ(E("{{ [1]|join(x=1) }}"), "line 1: join() got an unexpected keyword argument 'x'");
  EXPECT_EQ(E("{{ 9223372036854775807 + 1 }}"),
            "line 1: integer overflow (Python integers are unbounded; these are 64-bit)");
}

TEST(JinjaErrors, HostileTemplatesFailCleanly) {
  EXPECT_EQ(E("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
            "line 1: template is nested too deeply");
  std::string long_sum = "{{ 1";
  for (int i = 0; i < 20000; ++i) long_sum += " + 1";
  EXPECT_EQ(E(long_sum + " }}"), "line 1: expression is too complex");
  std::string nested_ifs;
  for (int i = 0; i < 3000; ++i) nested_ifs += "{% if true %}";
  EXPECT_EQ(E(nested_ifs), "line 1: template is nested too deeply");
  EXPECT_EQ(E("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}"),
            "line 1: maximum recursion depth exceeded");
  EXPECT_EQ(E("{% for item in t recursive %}{{ loop(t) }}{% endfor %}", {{"t", {1}}}),
            "line 1: maximum recursion depth exceeded");
  EXPECT_EQ(E("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
            "line 1: loop iteration limit exceeded (10000000 iterations in one render)");
  EXPECT_EQ(E("{{ 'a' * 10000000000 }}"), "line 1: string is too large");
  EXPECT_EQ(E("{% set ns = namespace(l=[]) %}{% for i in range(3000) %}{% set ns.l = [ns.l] %}"
              "{% endfor %}{{ ns.l }}"),
            "line 1: value is nested too deeply");
  EXPECT_EQ(E("{% set ns = namespace() %}{% set ns.me = ns %}"),
            "line 1: cannot store a namespace inside itself");
  // Deeply nested input is refused before rendering starts.
  ojson deep = 1;
  for (int i = 0; i < 2000; ++i) deep = ojson::array({deep});
  EXPECT_EQ(E("{{ x }}", {{"x", deep}}), "input value is nested too deeply");
}

TEST(JinjaErrors, InvalidUtf8RoundTrips) {
  // Bytes that are not UTF-8 pass through untouched (Python's surrogateescape).
  const std::string bad = "a\xff\xfe" "b";
  EXPECT_EQ(R("{{ s }}|{{ s|length }}|{{ s[::-1][::-1] }}", {{"s", bad}}), bad + "|4|" + bad);
}

}  // namespace
