@acceptance
Feature: AT-4 configuration validation
  `orchestrator config validate` accepts a valid configuration, names every problem of an
  invalid one (file, field, value and a suggestion) and points a workspace without a
  configuration at `orchestrator init`.

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
      | beta  | beta-pro    | 2            | 8             |
    And the agent "backend-dev" prefers the tool "alpha" with the model "alpha-large"
    And the agent "backend-dev" falls back to "beta:beta-pro"

  Scenario: a valid configuration passes
    When I run "orchestrator config validate"
    Then the command succeeds
    And stdout says "config OK"

  Scenario: an agent refers to a tool that does not exist
    Given the agent "backend-dev" prefers the tool "alpah" with the model "alpha-large"
    When I run "orchestrator config validate"
    Then the command fails with exit code 1
    And stderr says "agents.yaml"
    And stderr says "alpah"
    And stderr suggests "alpha"

  Scenario: a fallback chain refers to a tool that does not exist
    Given the agent "backend-dev" falls back to "betta:beta-pro"
    When I run "orchestrator config validate"
    Then the command fails with exit code 1
    And stderr says "betta"
    And stderr suggests "beta"

  Scenario: every problem is reported at once
    Given the agent "backend-dev" prefers the tool "alpah" with the model "alpha-large"
    And the agent "writer" prefers the tool "alpha" with the model "alpha-large"
    And the agent "writer" falls back to "betta:beta-pro"
    When I run "orchestrator config validate"
    Then the command fails with exit code 1
    And stderr says "alpah"
    And stderr says "betta"

  Scenario: a workspace without a config folder points at init
    Given the workspace has no config folder
    When I run "orchestrator config validate"
    Then the command fails with exit code 1
    And stderr says "orchestrator init"

  Scenario: init writes a configuration that validates
    Given the workspace has no config folder
    When I run "orchestrator init"
    And I run "orchestrator config validate"
    Then the command succeeds
    And stdout says "config OK"
