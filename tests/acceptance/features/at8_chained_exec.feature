@acceptance
Feature: AT-8 three chained exec runs
  A script chains agents through files: each `exec` reads the previous answer with
  --context and writes its own with --output. The three runs write three files, and
  telemetry links their three invocations by one chain_id.

  Background:
    Given a workspace whose tools log their argv:
      | tool  | model       | input $/Mtok | output $/Mtok |
      | alpha | alpha-large | 3            | 15            |
      | beta  | beta-pro    | 2            | 8             |
    And the agent "architect" prefers the tool "alpha" with the model "alpha-large"
    And the agent "backend-dev" prefers the tool "beta" with the model "beta-pro"

  Scenario: design, implement, review
    When I exec "Design the login" for "architect" with --output "f1.md"
    And I exec "Implement the design" for "backend-dev" with --context "f1.md" and --output "f2.md"
    And I exec "Review the code" for "architect" with --context "f2.md" and --output "f3.md"
    Then the files "f1.md", "f2.md" and "f3.md" are written
    And the file "f1.md" says "alpha answered: Design the login"
    And the file "f2.md" says "beta answered: Implement the design"
    And the file "f3.md" says "Review the code"
    And the file "f3.md" says "Design the login"
    And the telemetry holds 3 invocations
    And the invocations in telemetry share one chain_id

  Scenario: an exec that reads no earlier answer starts a chain of its own
    When I exec "Design the login" for "architect" with --output "f1.md"
    And I exec "Something else" for "architect" with --output "other.md"
    Then the telemetry holds 2 invocations
    And the invocations in telemetry have 2 different chain_ids
