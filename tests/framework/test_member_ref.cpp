// Member references (recrun/member_ref.hpp): the one parser of the ensemble's member syntax.
#include <gtest/gtest.h>

#include "recrun/error.hpp"
#include "recrun/member_ref.hpp"

namespace recrun {
namespace {

std::string error_of(std::string_view text) {
  try {
    parse_member_ref(text);
  } catch (const ParamError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(MemberRef, ParsesEveryForm) {
  const MemberRef key = parse_member_ref("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(key.kind, MemberRef::Kind::run);
  EXPECT_EQ(key.key, "0123456789abcdef0123456789abcdef");

  const MemberRef best = parse_member_ref("best:ease");
  EXPECT_EQ(best.kind, MemberRef::Kind::best);
  EXPECT_EQ(best.model, "ease");
  EXPECT_TRUE(best.experiment.empty());
  const MemberRef group = parse_member_ref("best:sasrec@baselines/seq");
  EXPECT_EQ(group.model, "sasrec");
  EXPECT_EQ(group.experiment, "baselines");
  EXPECT_EQ(group.group, "seq");

  const MemberRef train = parse_member_ref(" train:ease lambda=300  epochs=1 ");
  EXPECT_EQ(train.kind, MemberRef::Kind::train);
  EXPECT_EQ(train.model, "ease");
  ASSERT_EQ(train.sets.size(), 2u);
  EXPECT_EQ(train.sets[0], (std::pair<std::string, std::string>{"lambda", "300"}));
  EXPECT_EQ(train.inline_spec(), "ease lambda=300 epochs=1");
}

TEST(MemberRef, MistakesSayWhichFormWasMeant) {
  EXPECT_NE(error_of("3435f36a").find("looks like a trial key prefix (8 of 32 hex digits)"),
            std::string::npos);
  EXPECT_NE(error_of("ease").find("member 'ease' is not a trial key (32 hex digits)"),
            std::string::npos);
  EXPECT_NE(error_of("best:").find("names no model"), std::string::npos);
  EXPECT_NE(error_of("best:ease@").find("names no experiment after '@'"), std::string::npos);
  EXPECT_NE(error_of("best:ease@x/").find("names no group after '/'"), std::string::npos);
  EXPECT_NE(error_of("train:").find("names no model"), std::string::npos);
  EXPECT_NE(error_of("train:ease lambda").find("needs key=value after the model name, got 'lambda'"),
            std::string::npos);
  EXPECT_NE(error_of("train:lambda=3").find("where the model's name belongs"), std::string::npos);
  // A staging key of an unfinished attempt is never a member.
  EXPECT_NE(error_of("0123456789abcdef0123456789abcdef~attempt-2").find("is not a trial key"),
            std::string::npos);
}

}  // namespace
}  // namespace recrun
