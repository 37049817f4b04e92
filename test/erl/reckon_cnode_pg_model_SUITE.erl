%%% @doc common_test suite: the stateful model of the pg scope peer
%%% protocol (prop_pg_model) over the real C node and two real BEAM nodes.
%%%
%%% `property' runs the property from a fixed seed with a bounded number of
%%% runs and commands; longer runs through the environment:
%%% <ul>
%%% <li>`RECKON_CNODE_PG_MODEL_TESTS' (default 8): runs, each on a fresh
%%%   cluster;</li>
%%% <li>`RECKON_CNODE_PG_MODEL_COMMANDS' (default 16): commands per run at
%%%   most;</li>
%%% <li>`RECKON_CNODE_PG_MODEL_SEED' (`A,B,C', default `1,2,3'): the
%%%   generator's seed.</li>
%%% </ul>
%%% The other cases are command lists the property once shrank to (or that
%%% were written to pin a path down), run as they are.
%%% @end
-module(reckon_cnode_pg_model_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([property/1]).

-define(M, prop_pg_model).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [property].

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
    NumTests = env_int("RECKON_CNODE_PG_MODEL_TESTS", 8),
    MaxCommands = env_int("RECKON_CNODE_PG_MODEL_COMMANDS", 16),
    Seed = env_seed("RECKON_CNODE_PG_MODEL_SEED", {1, 2, 3}),
    %% a run takes a few seconds; shrinking a failure takes many runs
    ct:timetrap({seconds, 300 + NumTests * (5 + MaxCommands)}),
    ct:log("~p runs of at most ~p commands, seed ~p", [NumTests, MaxCommands, Seed]),
    T0 = erlang:monotonic_time(millisecond),
    Result = ?M:check(NumTests, #{max_commands => MaxCommands, seed => Seed}),
    ct:log("~p ms: ~p", [erlang:monotonic_time(millisecond) - T0, Result]),
    ?assertEqual(true, Result).

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
