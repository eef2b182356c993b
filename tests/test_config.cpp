// test_config.cpp: presets, the metadata round trip, overrides and validation errors.
#include <gtest/gtest.h>

#include "fpa/config.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

TEST(Config, PresetsFollowTheSpecTable) {
  ModelConfig a = preset_config("paper-rgb64-T64");
  EXPECT_EQ(a.g.image_size, 64);
  EXPECT_EQ(a.g.channels, 3);
  EXPECT_EQ(a.g.steps, 64);
  EXPECT_EQ(a.g.latent_dim, 512);
  EXPECT_EQ(a.g.hidden, 1024);
  EXPECT_EQ(preset_config("paper-rgb64-T16").g.steps, 16);
  ModelConfig g = preset_config("grey32-T32");
  EXPECT_EQ(g.d.image_size, 32);
  EXPECT_EQ(g.d.channels, 1);
  EXPECT_EQ(g.g.hidden, 512);
  EXPECT_EQ(g.g.latent_dim, 256);
  EXPECT_EQ(preset_config("grey32-T32+unet").g.model, "unet");
  for (const std::string& p : preset_names()) EXPECT_NO_THROW(validate(preset_config(p))) << p;
}

TEST(Config, MetadataRoundTrip) {
  ModelConfig c = preset_config("grey32-T32");
  set_config_value(c, "steps", "7");
  set_config_value(c, "d.attn_res_layers", "16,32");
  set_config_value(c, "g.vect_lr", "true");
  ModelConfig back = from_metadata(to_metadata(c));
  EXPECT_EQ(to_metadata(back), to_metadata(c));
  EXPECT_EQ(back.g.steps, 7);
  EXPECT_EQ(back.d.attn_res_layers, (std::vector<int64_t>{16, 32}));
  EXPECT_TRUE(back.g.vect_lr);
}

TEST(Config, ShortSizeFlagsSetBothModels) {
  ModelConfig c = preset_config("paper-rgb64-T64");
  set_config_value(c, "image_size", "32");
  EXPECT_EQ(c.g.image_size, 32);
  EXPECT_EQ(c.d.image_size, 32);
}

TEST(Config, BadValuesAreNamed) {
  ModelConfig c;
  EXPECT_ERROR(preset_config("celeba"), "unknown preset 'celeba'; known presets: paper-rgb64-T64");
  EXPECT_ERROR(set_config_value(c, "stepz", "3"), "unknown option 'stepz'");
  EXPECT_ERROR(set_config_value(c, "steps", "3x"), "g.steps expects an integer, got '3x'");
  EXPECT_ERROR(set_config_value(c, "vect_lr", "yes"), "g.vect_lr expects true or false");
  EXPECT_ERROR(from_metadata({{"g.bogus", "1"}}), "unknown model configuration key 'g.bogus'");
  set_config_value(c, "image_size", "48");
  EXPECT_ERROR(validate(c), "image size 48 is not a power of two");
  c = ModelConfig();
  c.d.output_size = 3;
  EXPECT_ERROR(validate(c), "d.output_size must be 1 or 5");
}

}  // namespace
}  // namespace fpa::test
