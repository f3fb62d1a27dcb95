#include <gtest/gtest.h>

#include "core/split.hpp"
#include "recrun/error.hpp"

namespace recrun::core {
namespace {

// u1: 5 items with a timestamp tie (b and c at t=20, file order b then c); u2: 2 items (dropped);
// u3: 3 items given out of time order.
Dataset make_dataset() {
  DatasetBuilder b;
  b.add_interaction("u1", "a", 10);
  b.add_interaction("u1", "b", 20);
  b.add_interaction("u2", "a", 5);
  b.add_interaction("u1", "c", 20);
  b.add_interaction("u1", "d", 40);
  b.add_interaction("u3", "d", 30);
  b.add_interaction("u3", "e", 10);
  b.add_interaction("u2", "b", 6);
  b.add_interaction("u1", "e", 30);
  b.add_interaction("u3", "a", 20);
  return b.build("toy", {}, "fp");
}

std::vector<std::string> names(const Dataset& d, std::span<const std::int32_t> items) {
  std::vector<std::string> out;
  for (const auto i : items) out.push_back(d.item_ids[i]);
  return out;
}

TEST(Split, StableTimeOrderFileOrderBreaksTies) {
  const Dataset d = make_dataset();
  const auto u1 = *d.find_user("u1");
  EXPECT_EQ(names(d, d.user_items(u1)), (std::vector<std::string>{"a", "b", "c", "e", "d"}));
  const auto u3 = *d.find_user("u3");
  EXPECT_EQ(names(d, d.user_items(u3)), (std::vector<std::string>{"e", "a", "d"}));
}

TEST(Split, LeaveOneOutTargetsAndHistories) {
  const Dataset d = make_dataset();
  const Split s = make_split(d, {});
  ASSERT_EQ(s.eval_users.size(), 2u);  // u2 has 2 interactions < 3
  EXPECT_EQ(s.dropped_users, 1);
  const auto u1 = *d.find_user("u1");
  const auto u2 = *d.find_user("u2");
  const auto u3 = *d.find_user("u3");
  EXPECT_EQ(s.eval_users, (std::vector<std::int64_t>{u1, u3}));
  EXPECT_EQ(d.item_ids[s.valid_targets[0]], "e");
  EXPECT_EQ(d.item_ids[s.test_targets[0]], "d");
  EXPECT_EQ(d.item_ids[s.valid_targets[1]], "a");
  EXPECT_EQ(d.item_ids[s.test_targets[1]], "d");
  EXPECT_EQ(names(d, s.train.items(u1)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(names(d, s.train_valid.items(u1)), (std::vector<std::string>{"a", "b", "c", "e"}));
  EXPECT_EQ(names(d, s.train.items(u3)), (std::vector<std::string>{"e"}));
  EXPECT_TRUE(s.train.items(u2).empty());  // dropped users do not train either
  EXPECT_EQ(s.train.size(), 4);
}

TEST(Split, MinInteractionsIsConfigurable) {
  const Dataset d = make_dataset();
  const Split s = make_split(d, {core::SplitMode::leave_one_out, 4});
  ASSERT_EQ(s.eval_users.size(), 1u);
  EXPECT_EQ(d.user_ids[s.eval_users[0]], "u1");
  EXPECT_THROW(make_split(d, {core::SplitMode::leave_one_out, 2}), ParamError);
  // An unknown split cannot be written any more (SplitMode); its name is refused where it is read.
  EXPECT_FALSE(parse_split_mode("random"));
  EXPECT_EQ(parse_split_mode("full"), SplitMode::full);
  EXPECT_EQ(to_string(SplitMode::leave_one_out), "leave_one_out");
}

TEST(Split, FullModeTrainsOnEverythingAndEvaluatesNothing) {
  const Dataset d = make_dataset();
  const Split s = make_split(d, {core::SplitMode::full, 1});
  EXPECT_TRUE(s.eval_users.empty());
  EXPECT_EQ(s.train.size(), d.num_interactions());
  const auto u1 = *d.find_user("u1");
  EXPECT_EQ(names(d, s.train.items(u1)), (std::vector<std::string>{"a", "b", "c", "e", "d"}));
}

}  // namespace
}  // namespace recrun::core
