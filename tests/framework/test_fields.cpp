// Typed parameter binding: each field declared once, defaults from the member initialisers,
// the filled struct handed to the factory, and registration refusing bad declarations.
#include <gtest/gtest.h>

#include "recrun/error.hpp"
#include "recrun/optim.hpp"
#include "recrun/registry.hpp"

namespace recrun {
namespace {

enum class Mode { fast, exact };

struct Inner {
  std::int64_t width = 8;
  double rate = 0.5;
};

struct Opts {
  double lambda = 2.5;
  int small = 3;
  bool flag = true;
  std::string name = "abc";
  std::vector<std::string> tags = {"x"};
  Mode mode = Mode::exact;
  Inner inner;
  OptimizerOptions optimizer{.lr = 0.01, .clip_norm = 0.0};
};

void declare(Fields<Opts>& f) {
  f.add("lambda", &Opts::lambda, "l2").at_least(0);
  f.add("small", &Opts::small, "a 32-bit field").range(0, 100);
  f.add("flag", &Opts::flag, "a switch");
  f.add("name", &Opts::name, "a string").one_of({"abc", "def"});
  f.add("tags", &Opts::tags, "a list");
  f.choice("mode", &Opts::mode, {{"fast", Mode::fast}, {"exact", Mode::exact}}, "an enum");
  f.nest(&Opts::inner, [](Fields<Inner>& n) {
    n.add("width", &Inner::width, "nested int").at_least(1);
    n.add("rate", &Inner::rate, "nested real");
  });
  f.nest(&Opts::optimizer, declare_optimizer_fields);
}

std::vector<ParamSpec> schema_of() {
  const Opts prototype{};
  Fields<Opts> f(prototype);
  declare(f);
  return f.specs();
}

const ParamSpec& spec(const std::vector<ParamSpec>& s, const std::string& name) {
  for (const auto& p : s)
    if (p.name == name) return p;
  throw std::runtime_error("no spec " + name);
}

TEST(Fields, DefaultsComeFromTheMemberInitialisers) {
  const auto s = schema_of();
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(std::get<double>(spec(s, "lambda").default_value), 2.5);
  EXPECT_EQ(*spec(s, "lambda").min, 0);
  EXPECT_EQ(spec(s, "small").type, ParamType::integer);
  EXPECT_EQ(std::get<std::int64_t>(spec(s, "small").default_value), 3);
  EXPECT_EQ(std::get<bool>(spec(s, "flag").default_value), true);
  EXPECT_EQ(std::get<std::string>(spec(s, "name").default_value), "abc");
  EXPECT_EQ(std::get<std::vector<std::string>>(spec(s, "tags").default_value),
            std::vector<std::string>{"x"});
  EXPECT_EQ(std::get<std::string>(spec(s, "mode").default_value), "exact");
  EXPECT_EQ(spec(s, "mode").choices, (std::vector<std::string>{"fast", "exact"}));
  EXPECT_EQ(std::get<std::int64_t>(spec(s, "width").default_value), 8);
  // The nested optimizer takes this struct's defaults, not OptimizerOptions' own.
  EXPECT_EQ(std::get<double>(spec(s, "lr").default_value), 0.01);
  EXPECT_EQ(std::get<double>(spec(s, "clip_norm").default_value), 0.0);
  EXPECT_EQ(std::get<std::string>(spec(s, "optimizer").default_value), "adam");
  EXPECT_EQ(s[0].name, "lambda");  // declaration order
  EXPECT_EQ(s.back().name, "clip_norm");
}

TEST(Fields, TheFactoryReceivesTheFilledStruct) {
  Registry r;
  Opts seen;
  bool called = false;
  r.add_model<Opts>({.name = "typed", .summary = "test"}, declare,
                    [&](const Opts& o, const ModelEnv&) -> std::unique_ptr<Model> {
                      seen = o;
                      called = true;
                      return nullptr;
                    });
  const ModelInfo& info = r.model("typed");
  const Params p = resolve_params(
      info.params,
      {{"lambda", std::int64_t{7}},
       {"small", std::int64_t{42}},
       {"flag", false},
       {"name", std::string("def")},
       {"tags", std::vector<std::string>{"a", "b"}},
       {"mode", std::string("fast")},
       {"width", std::int64_t{64}},
       {"optimizer", std::string("sgd")},
       {"lr", 0.5}},
      "model 'typed'");
  const Dataset empty;
  info.make(p, ModelEnv{.dataset = empty, .registry = r, .seed = 1});
  ASSERT_TRUE(called);
  EXPECT_EQ(seen.lambda, 7.0);  // an integer written for a real
  EXPECT_EQ(seen.small, 42);
  EXPECT_FALSE(seen.flag);
  EXPECT_EQ(seen.name, "def");
  EXPECT_EQ(seen.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(seen.mode, Mode::fast);
  EXPECT_EQ(seen.inner.width, 64);
  EXPECT_EQ(seen.inner.rate, 0.5);  // left at its default
  EXPECT_EQ(seen.optimizer.kind, OptimizerKind::sgd);
  EXPECT_EQ(seen.optimizer.lr, 0.5);
  EXPECT_EQ(seen.optimizer.clip_norm, 0.0);
}

// The message registration gives for a model declared by `declare`, or "" when accepted.
template <class O, class D>
std::string refusal(D declare) {
  Registry r;
  try {
    r.add_model<O>({.name = "bad", .summary = "test"}, declare,
                   [](const O&, const ModelEnv&) -> std::unique_ptr<Model> { return nullptr; });
  } catch (const PluginError& e) {
    return e.what();
  }
  return {};
}

struct Simple {
  double lambda = -1;
  std::int64_t n = 5;
  std::string kind = "zzz";
  Mode mode = static_cast<Mode>(7);
  std::vector<std::string> tags = {"q"};
};

TEST(Fields, RegistrationRefusesADefaultOutsideItsBounds) {
  const auto msg = refusal<Simple>([](Fields<Simple>& f) {
    f.add("lambda", &Simple::lambda, "l2").at_least(0);
  });
  EXPECT_NE(msg.find("model 'bad': parameter 'lambda' has a default (-1)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find(">= 0"), std::string::npos) << msg;
  EXPECT_NE(refusal<Simple>([](Fields<Simple>& f) { f.add("n", &Simple::n, "n").range(0, 3); })
                .find("parameter 'n'"),
            std::string::npos);
}

TEST(Fields, RegistrationRefusesADefaultOutsideItsChoices) {
  auto msg = refusal<Simple>([](Fields<Simple>& f) {
    f.add("kind", &Simple::kind, "kind").one_of({"a", "b"});
  });
  EXPECT_NE(msg.find("parameter 'kind'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("zzz"), std::string::npos) << msg;
  msg = refusal<Simple>([](Fields<Simple>& f) {
    f.choice("mode", &Simple::mode, {{"fast", Mode::fast}, {"exact", Mode::exact}}, "m");
  });
  EXPECT_NE(msg.find("parameter 'mode'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not among the choices"), std::string::npos) << msg;
  msg = refusal<Simple>([](Fields<Simple>& f) {
    f.add("tags", &Simple::tags, "tags").one_of({"a", "b"});
  });
  EXPECT_NE(msg.find("parameter 'tags'"), std::string::npos) << msg;
}

TEST(Fields, RegistrationRefusesReservedRepeatedAndMalformedNames) {
  for (const std::string reserved : {"epochs", "patience", "eval_every", "time_budget", "seed"}) {
    const auto msg = refusal<Simple>(
        [&](Fields<Simple>& f) { f.add(reserved, &Simple::n, "clashes with the trainer"); });
    EXPECT_NE(msg.find("parameter '" + reserved + "' uses a name the framework reserves"),
              std::string::npos)
        << msg;
  }
  auto msg = refusal<Simple>([](Fields<Simple>& f) {
    f.add("n", &Simple::n, "once");
    f.add("n", &Simple::n, "twice");
  });
  EXPECT_NE(msg.find("parameter 'n' is declared twice"), std::string::npos) << msg;
  msg = refusal<Simple>([](Fields<Simple>& f) { f.add("Bad-Name", &Simple::n, "x"); });
  EXPECT_NE(msg.find("'Bad-Name' is not a valid name"), std::string::npos) << msg;
  msg = refusal<Simple>([](Fields<Simple>& f) { f.add("n", &Simple::n, ""); });
  EXPECT_NE(msg.find("has no help text"), std::string::npos) << msg;
  // Every trainer parameter is reserved, so no model can shadow one.
  EXPECT_TRUE(refusal<Simple>([](Fields<Simple>& f) { f.add("n", &Simple::n, "fine"); }).empty());
}

TEST(Fields, AModelWithoutParametersRegisters) {
  Registry r;
  r.add_model({.name = "plain", .summary = "no params"},
              [](const ModelEnv&) -> std::unique_ptr<Model> { return nullptr; });
  EXPECT_TRUE(r.model("plain").params.empty());
  EXPECT_THROW(r.add_model({.name = "plain", .summary = "again"},
                           [](const ModelEnv&) -> std::unique_ptr<Model> { return nullptr; }),
               PluginError);
}

}  // namespace
}  // namespace recrun
