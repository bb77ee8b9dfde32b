@acceptance
Feature: AT-5 telemetry row and daily report
  Every invocation of a tool is a row of work/telemetry.db's invocations table with its
  tokens, cost (from the prices in models.yaml), latency and outcome; `orchestrator stats
  --daily` reports the rows grouped by agent, model or tool, with their cost.

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
      | beta  | beta-pro    | 2            | 8             |
    And the agent "backend-dev" prefers the tool "alpha" with the model "alpha-large"
    And the agent "writer" prefers the tool "beta" with the model "beta-pro"

  Scenario: an exec is one telemetry row with tokens, cost, latency and outcome
    When I exec a task for "backend-dev" with the prompt "Fix it. USAGE=2000/1000"
    Then the command succeeds
    And the telemetry holds 1 invocations
    And the last invocation in telemetry has:
      | column        | value       |
      | agent         | backend-dev |
      | tool          | alpha       |
      | model         | alpha-large |
      | outcome       | succeeded   |
      | input_tokens  | 2000        |
      | output_tokens | 1000        |
      | cost_usd      | 0.021       |
    And the last invocation in telemetry took a measured time

  Scenario: a failed invocation is a row too
    Given the tool "alpha" exits with code 2
    When I exec a task for "backend-dev" with the prompt "Fix it"
    Then the command fails with exit code 1
    And the last invocation in telemetry has:
      | column     | value  |
      | outcome    | failed |
      | exit_code  | 2      |
    And the last invocation in telemetry took a measured time

  Scenario: the daily report groups the rows and sums their cost
    When I exec a task for "backend-dev" with the prompt "One. USAGE=2000/1000"
    And I exec a task for "backend-dev" with the prompt "Two. USAGE=1000/0"
    And I exec a task for "writer" with the prompt "Three. USAGE=10000/500"
    And I run "orchestrator stats --daily --by agent --json"
    Then the command succeeds
    And the JSON report has these rows:
      | agent       | invocations | input_tokens | output_tokens | cost_usd |
      | backend-dev | 2           | 3000         | 1000          | 0.024    |
      | writer      | 1           | 10000        | 500           | 0.024    |

  Scenario: the daily report as text, by model
    When I exec a task for "backend-dev" with the prompt "One. USAGE=2000/1000"
    And I exec a task for "writer" with the prompt "Two. USAGE=10000/500"
    And I run "orchestrator stats --daily --by model"
    Then the command succeeds
    And the text report has a line for "alpha-large" with 1 invocations costing "0.0210"
    And the text report has a line for "beta-pro" with 1 invocations costing "0.0240"
