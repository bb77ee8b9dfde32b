@acceptance
Feature: AT-2 cheap model under the token threshold
  policies.yaml's cost_optimization sends prompts under simple_task_threshold_tokens to the
  first of simple_task_models; longer prompts go to the preferred model. The reason for
  the choice is kept in telemetry (invocations.route_reason) and in the result file.

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
      | alpha | alpha-small | 1            | 5             |
    And the agent "backend-dev" prefers the tool "alpha" with the model "alpha-large"
    And prompts under 500 tokens go to the cheap model "alpha-small"

  Scenario Outline: exec picks the model by the prompt's size
    When I exec a task for "backend-dev" with a prompt of <tokens> tokens
    Then the command succeeds
    And the tools were called with exactly these argv:
      | argv                              |
      | alpha --model <model> --task $TASK |
    And the last invocation in telemetry has:
      | column       | value    |
      | model        | <model>  |
      | route_reason | <reason> |

    Examples:
      | tokens | model       | reason            |
      | 100    | alpha-small | cost_optimization |
      | 400    | alpha-small | cost_optimization |
      | 2000   | alpha-large | preferred         |

  Scenario Outline: the daemon's result file gives the route reason
    Given the task "<task>" for "backend-dev" is in the inbox with a prompt of <tokens> tokens
    When the daemon drains the inbox
    Then the result file of "<task>" has:
      | field        | value     |
      | status       | succeeded |
      | model        | <model>   |
      | route_reason | <reason>  |
    And the last invocation in telemetry has:
      | column       | value    |
      | task_id      | <task>   |
      | route_reason | <reason> |

    Examples:
      | task       | tokens | model       | reason            |
      | small-task | 120    | alpha-small | cost_optimization |
      | large-task | 3000   | alpha-large | preferred         |

  Scenario: a task pinned to a model is not downgraded
    Given the task "pinned-task" for "backend-dev" pinned to "alpha-large" is in the inbox
    When the daemon drains the inbox
    Then the result file of "pinned-task" has:
      | field        | value       |
      | model        | alpha-large |
      | route_reason | pinned      |
