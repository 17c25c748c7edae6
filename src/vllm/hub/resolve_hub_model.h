// The Hub's one entry point for the rest of vllm-cpp: a model id becomes a local folder.
#pragma once

#include <string>

namespace vllm::hub {

// A well-formed Hub repository id, "name" or "org/name" (huggingface_hub's validate_repo_id rules:
// letters, digits, '-', '_', '.', each part starting and ending with a letter, digit or '_', no
// "--" or "..", no ".git" suffix, the name at most 96 characters).
bool is_valid_repo_id(const std::string& repo_id);
// Why repo_id is not one, in huggingface_hub's words (its HFValidationError messages); "" if it is.
std::string repo_id_error(const std::string& repo_id);

// The local snapshot folder of repo_id at revision ("" means "main") in the cache under
// download_dir ("" means the default cache). A complete cached snapshot is used as it is; otherwise
// the model is downloaded. With HF_HUB_OFFLINE set the network is never used.
std::string resolve_hub_model(const std::string& repo_id, const std::string& revision,
                              const std::string& download_dir);

}  // namespace vllm::hub
