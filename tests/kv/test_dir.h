// Where a storage test keeps its files: on leveldb::NewMemEnv, or in a fresh directory under
// the test temp directory (removed by the destructor) on leveldb::Env::Default().
#pragma once

#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <filesystem>
#include <memory>
#include <string>

namespace kv::test {

class TestDir {
 public:
  // `real`: a real directory; otherwise an in-memory Env. `tag` names the directory.
  TestDir(bool real, const std::string& tag) : real_(real) {
    if (real_) {
      env_ = leveldb::Env::Default();
      std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      for (char& c : name) {
        if (c == '/') c = '_';
      }
      root_ = ::testing::TempDir() + "raftkv-" + tag + "-" + name;
      std::filesystem::remove_all(root_);
      std::filesystem::create_directories(root_);
    } else {
      mem_env_.reset(leveldb::NewMemEnv(leveldb::Env::Default()));
      env_ = mem_env_.get();
    }
  }
  ~TestDir() {
    if (real_) std::filesystem::remove_all(root_);
  }

  leveldb::Env* env() const { return env_; }
  // `name` ("/log", say) inside this test's directory.
  std::string Path(const std::string& name) const { return root_ + name; }

 private:
  bool real_;
  std::unique_ptr<leveldb::Env> mem_env_;
  leveldb::Env* env_ = nullptr;
  std::string root_;
};

// Names the instances of a TEST_P over a bool "real directory" parameter.
inline std::string EnvName(const ::testing::TestParamInfo<bool>& param) {
  return param.param ? "RealDir" : "MemEnv";
}

}  // namespace kv::test
