%%% @doc common_test suite: the stateful model of the pg scope peer
%%% protocol (prop_pg_model) over the real C node and two real BEAM nodes.
%%%
%%% `property' runs the property from a fixed seed with a bounded number of
%%% runs and commands; longer runs through the environment:
%%% <ul>
%%% <li>`RECKON_CNODE_PG_MODEL_TESTS' (default 16): runs, each on a fresh
%%%   cluster;</li>
%%% <li>`RECKON_CNODE_PG_MODEL_COMMANDS' (default 20): commands per run at
%%%   most;</li>
%%% <li>`RECKON_CNODE_PG_MODEL_SEED' (`A,B,C', default `1,2,3'): the
%%%   generator's seed.</li>
%%% </ul>
%%% The other cases are explicit command lists, run as they are (each on a
%%% fresh cluster, checked as the property checks): paths written down to
%%% pin them, and any counterexample the property shrinks to is added
%%% here.
%%% @end
-module(reckon_cnode_pg_model_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([property/1,
         c_duplicate_join_across_scope_restart/1,
         leaves_while_disconnected/1,
         node_killed_with_duplicates/1,
         beam_member_node_killed/1]).

-define(M, prop_pg_model).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [c_duplicate_join_across_scope_restart,
     leaves_while_disconnected,
     node_killed_with_duplicates,
     beam_member_node_killed,
     property].

init_per_suite(Config) ->
    rc_test_lib:suite_init(Config).

end_per_suite(Config) ->
    rc_test_lib:suite_end(Config, [testcase, suite]).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    rc_test_lib:cleanup([testcase]),
    ok.

%%%===================================================================
%%% The property
%%%===================================================================

property(_Config) ->
    NumTests = env_int("RECKON_CNODE_PG_MODEL_TESTS", 16),
    MaxCommands = env_int("RECKON_CNODE_PG_MODEL_COMMANDS", 20),
    Seed = env_seed("RECKON_CNODE_PG_MODEL_SEED", {1, 2, 3}),
    %% a run takes a few seconds; shrinking a failure takes many runs
    ct:timetrap({seconds, 300 + NumTests * (5 + MaxCommands)}),
    ct:log("~p runs of at most ~p commands, seed ~p", [NumTests, MaxCommands, Seed]),
    T0 = erlang:monotonic_time(millisecond),
    Result = ?M:check(NumTests, #{max_commands => MaxCommands, seed => Seed}),
    ct:log("~p ms: ~p", [erlang:monotonic_time(millisecond) - T0, Result]),
    ?assertEqual(true, Result).

%%%===================================================================
%%% Explicit command lists ({var, N} is the result of the N-th command)
%%%===================================================================

%% A C process joined twice; the BEAM scope that saw it restarts and, before
%% the C node has found the new scope, the C process leaves once, joins
%% another group and ends.
c_duplicate_join_across_scope_restart(_Config) ->
    run([{spawn_proc, [c]},
         {spawn_proc, [b1]},
         {join, [c, g1, [{var, 1}, {var, 1}], wait]},
         {join, [b1, g1, {var, 2}, wait]},
         {restart_scope, [b1, nowait]},
         {leave, [c, g1, {var, 1}, nowait]},
         {join, [c, g2, {var, 1}, nowait]},
         {join, [b1, g2, {var, 2}, wait]},
         {kill_proc, [c, {var, 1}, wait]}]).

%% Leaves and joins on both sides while a BEAM node and the C node are
%% disconnected; then once more after the C node is back.
leaves_while_disconnected(_Config) ->
    run([{spawn_proc, [c]},
         {spawn_proc, [b2]},
         {join, [c, g1, {var, 1}, wait]},
         {join, [b2, g1, [{var, 2}], wait]},
         {reconnect, [b2, nowait]},
         {leave, [c, g1, [{var, 1}], nowait]},
         {leave, [b2, g1, {var, 2}, nowait]},
         {join, [c, g3, {var, 1}, nowait]},
         {join, [b2, g3, [{var, 2}, {var, 2}], wait]},
         {reconnect, [b2, wait]},
         {leave, [b2, g3, [{var, 2}, {var, 2}], wait]}]).

%% A BEAM process joined twice and to two groups; its node is killed and
%% replaced; the other node is stopped and replaced.
node_killed_with_duplicates(_Config) ->
    run([{spawn_proc, [b1]},
         {spawn_proc, [c]},
         {join, [b1, g1, [{var, 1}, {var, 1}], wait]},
         {join, [b1, g2, {var, 1}, wait]},
         {join, [c, g1, {var, 2}, wait]},
         {restart_node, [b1, kill, nowait]},
         {spawn_proc, [b1]},
         {join, [b1, g1, {var, 7}, wait]},
         {restart_node, [b2, stop, wait]}]).

%% What the property shrank to against a C node that kept a lost peer's
%% members (its members were dropped only by a later sync): a BEAM member's
%% node is killed; its member must go from the C node's view at once.
beam_member_node_killed(_Config) ->
    run([{spawn_proc, [b2]},
         {join, [b2, g1, {var, 1}, wait]},
         {restart_node, [b2, kill, wait]}]).

%% Runs [{Command, Args}] as the property runs a command list.
run(Calls) ->
    Cmds = [{set, {var, N}, {call, ?M, F, A}}
            || {N, {F, A}} <- lists:zip(lists:seq(1, length(Calls)), Calls)],
    {History, State, Result} = ?M:run_case(Cmds),
    ct:log("history: ~p~nstate: ~p", [History, State]),
    ?assertEqual(ok, Result).

env_int(Var, Default) ->
    case os:getenv(Var) of
        false -> Default;
        "" -> Default;
        V -> list_to_integer(V)
    end.

env_seed(Var, Default) ->
    case os:getenv(Var) of
        false -> Default;
        "" -> Default;
        V -> list_to_tuple([list_to_integer(X) || X <- string:lexemes(V, ",")])
    end.
