@acceptance
Feature: AT-1 routing to the configured tool
  A task for an agent runs on the agent's preferred tool and model, and a task of a type
  the agent overrides runs on the tool and model configured for that type. Each tool logs
  the argv it was started with; $TASK in an expected argv stands for the task's id.

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
      | alpha | alpha-small | 1            | 5             |
      | beta  | beta-pro    | 2            | 8             |
    And the agent "backend-dev" prefers the tool "alpha" with the model "alpha-large"
    And the agent "backend-dev" runs "review" tasks on "beta:beta-pro"
    And the agent "backend-dev" runs "docs" tasks on "alpha-small"

  Scenario: a task goes to the agent's preferred tool and model
    When I exec a task for "backend-dev" with the prompt "Fix the login redirect"
    Then the command succeeds
    And stdout says "alpha answered: Fix the login redirect"
    And the tools were called with exactly these argv:
      | argv                                   |
      | alpha --model alpha-large --task $TASK |
    And the last invocation in telemetry has:
      | column       | value       |
      | tool         | alpha       |
      | model        | alpha-large |
      | route_reason | preferred   |

  Scenario: a task type the agent overrides goes to another tool
    When I submit a "review" task "review-login" for "backend-dev" with the prompt "Review the fix"
    And the daemon drains the inbox
    Then the tools were called with exactly these argv:
      | argv                                       |
      | beta --model beta-pro --task review-login |
    And the result file of "review-login" has:
      | field        | value     |
      | status       | succeeded |
      | tool         | beta      |
      | model        | beta-pro  |
      | route_reason | task_type |

  Scenario: a task type override may name only a model of the preferred tool
    When I submit a "docs" task "document-login" for "backend-dev" with the prompt "Document it"
    And the daemon drains the inbox
    Then the tools were called with exactly these argv:
      | argv                                           |
      | alpha --model alpha-small --task document-login |
    And the result file of "document-login" has:
      | field        | value       |
      | tool         | alpha       |
      | model        | alpha-small |
      | route_reason | task_type   |

  Scenario: a task type the agent does not override goes to the preferred tool
    When I submit a "coding" task "code-login" for "backend-dev" with the prompt "Write it"
    And the daemon drains the inbox
    Then the tools were called with exactly these argv:
      | argv                                        |
      | alpha --model alpha-large --task code-login |
    And the result file of "code-login" has:
      | field        | value     |
      | route_reason | preferred |
