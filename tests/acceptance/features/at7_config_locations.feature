@acceptance
Feature: AT-7 config where people keep it
  The configuration can live in the user's config folder (~/.config/orchestrator on Linux),
  or in a folder ORCHESTRATOR_CONFIG_DIR names; a workspace's config/ overrides it key by
  key. `orchestrator config validate` lists the files it read, every problem names the file
  it came from, and with no configuration anywhere the command names the places it looked.

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
      | alpha | alpha-small | 1            | 5             |
    And the agent "backend-dev" prefers the tool "alpha" with the model "alpha-large"

  Scenario: a workspace without config/ uses the user's config folder
    Given the configuration is kept in the user config folder
    When I run "orchestrator config validate"
    Then the command succeeds
    And stdout says "config OK"
    And stdout says "read USER/agents.yaml"
    And stdout says "read USER/policies.yaml"

  Scenario: the workspace's config/ overrides one key of the user's configuration
    Given the configuration is kept in the user config folder
    And the workspace's config/agents.yaml gives "backend-dev" the model "alpha-small"
    And the task "t1" for "backend-dev" is in the inbox with the prompt "Fix the login redirect"
    When the daemon drains the inbox
    Then the tools were called with exactly these argv:
      | argv                                |
      | alpha --model alpha-small --task t1 |

  Scenario: ORCHESTRATOR_CONFIG_DIR names the folder to read instead
    Given the configuration is kept in the folder "team-config"
    When I run "orchestrator config validate" with ORCHESTRATOR_CONFIG_DIR set to "team-config"
    Then the command succeeds
    And stdout says "read FILES/team-config/tools.yaml"

  Scenario: a problem in the user's config names the user's file
    Given the agent "backend-dev" prefers the tool "alpah" with the model "alpha-large"
    And the configuration is kept in the user config folder
    When I run "orchestrator config validate"
    Then the command fails with exit code 1
    And stdout says "read USER/agents.yaml"
    And stderr says "USER/agents.yaml: agents.backend-dev.preferred_tool"
    And stderr suggests "alpha"

  Scenario: with no configuration anywhere the command names the places it looked
    Given the workspace has no config folder
    When I run "orchestrator config validate"
    Then the command fails with exit code 1
    And stderr says "WORKSPACE/config: no config folder here"
    And stderr says "USER: nor in the user config folder"
    And stderr says "orchestrator init"
