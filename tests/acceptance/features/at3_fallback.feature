@acceptance
Feature: AT-3 fallback to the next tool in the chain
  When the preferred tool cannot run (its binary is not installed) the next tool of the
  agent's fallback chain runs the task, and `exec` says so in one line on stderr. When
  every tool of the chain fails, `exec` exits 1 and lists every attempt.

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
      | beta  | beta-pro    | 2            | 8             |
      | gamma | gamma-flash | 1            | 4             |
    And the agent "backend-dev" prefers the tool "alpha" with the model "alpha-large"
    And the agent "backend-dev" falls back to "beta:beta-pro, gamma:gamma-flash"
    And the tool "alpha" is not installed

  Scenario: the preferred tool is missing, the next tool in the chain runs
    When I exec a task for "backend-dev" with the prompt "Fix the login redirect"
    Then the command succeeds
    And stdout says "beta answered: Fix the login redirect"
    And the tools were called with exactly these argv:
      | argv                                |
      | beta --model beta-pro --task $TASK |
    And the last invocation in telemetry has:
      | column        | value     |
      | tool          | beta      |
      | model         | beta-pro  |
      | route_reason  | fallback  |
      | outcome       | succeeded |
    And exec warned on stderr, in one line, that "alpha" gave way and it is "trying beta:beta-pro"

  Scenario: the daemon records the fallback in the result file
    Given the task "fallback-task" for "backend-dev" is in the inbox with the prompt "Fix it"
    When the daemon drains the inbox
    Then the result file of "fallback-task" has:
      | field         | value             |
      | status        | succeeded         |
      | tool          | beta              |
      | route_reason  | fallback          |
      | fallback_from | alpha:alpha-large |
    And the attempts in the result file of "fallback-task" are:
      | tool  | model       | outcome   |
      | alpha | alpha-large | failed    |
      | beta  | beta-pro    | succeeded |

  Scenario: every tool of the chain fails
    Given the tool "beta" exits with code 3
    And the tool "gamma" exits with code 4
    When I exec a task for "backend-dev" with the prompt "Fix the login redirect"
    Then the command fails with exit code 1
    And stderr says "error: task failed"
    And the tools were called with exactly these argv:
      | argv                                              |
      | beta --model beta-pro --task $TASK --exit-code 3    |
      | gamma --model gamma-flash --task $TASK --exit-code 4 |
    And exec listed on stderr every attempt of the exhausted chain:
      | tool  | model       |
      | alpha | alpha-large |
      | beta  | beta-pro    |
      | gamma | gamma-flash |
