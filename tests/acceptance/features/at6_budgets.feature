@acceptance
Feature: AT-6 budget warning and hard block
  policies.yaml's budgets warn at warn_at_percent of a limit and, in mode hard, block a
  task whose estimated cost (prices from models.yaml's price_per_mtok) would pass the
  limit: the daemon's result is blocked_by_budget, and `exec` exits 1 without running any
  tool. The estimate of a task on alpha-large is about $0.03 (2,000 output tokens at $15
  per million); the earlier work below cost $0.036 (2,000 tokens in at $3, 2,000 out).

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
    And the agent "backend-dev" prefers the tool "alpha" with the model "alpha-large"

  Scenario: the daemon blocks a task past a hard daily limit
    Given a "hard" daily budget of $0.05 that warns at 80%
    And "backend-dev" already spent $0.036 today on "Earlier work. USAGE=2000/2000"
    And the task "over-budget" for "backend-dev" is in the inbox with the prompt "More work"
    When the daemon drains the inbox
    Then the result file of "over-budget" has:
      | field  | value             |
      | status | blocked_by_budget |
    And the error in the result file of "over-budget" mentions "daily budget"
    And the tools were called 1 times

  Scenario: exec warns on stderr once the spend reaches warn_at_percent
    Given a "hard" daily budget of $0.10 that warns at 50%
    And "backend-dev" already spent $0.036 today on "Earlier work. USAGE=2000/2000"
    When I exec a task for "backend-dev" with the prompt "More work"
    Then the command succeeds
    And the tools were called 2 times
    And exec warned on stderr that the daily budget of $0.10 is at 50% or more

  Scenario: exec does not warn below warn_at_percent
    Given a "hard" daily budget of $0.10 that warns at 50%
    When I exec a task for "backend-dev" with the prompt "First work"
    Then the command succeeds
    And stderr says nothing about a budget

  Scenario: exec refuses a task that would pass a hard limit and runs nothing
    Given a "hard" daily budget of $0.05 that warns at 80%
    And "backend-dev" already spent $0.036 today on "Earlier work. USAGE=2000/2000"
    When I exec a task for "backend-dev" with the prompt "More work"
    Then the command fails with exit code 1
    And exec said on stderr that the daily budget of $0.05 blocks the task
    And the tools were called 1 times
    And the telemetry holds 1 invocations

  Scenario: a soft limit only warns
    Given a "soft" daily budget of $0.05 that warns at 80%
    And "backend-dev" already spent $0.036 today on "Earlier work. USAGE=2000/2000"
    When I exec a task for "backend-dev" with the prompt "More work"
    Then the command succeeds
    And the tools were called 2 times
    And exec warned on stderr that the daily budget of $0.05 is at 80% or more
