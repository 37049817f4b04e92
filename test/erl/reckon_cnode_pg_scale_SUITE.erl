%%% @doc common_test suite: 100,000 memberships in 10,000 groups synced
%%% between OTP 25 `pg' scopes and the C node, in both directions, compared
%%% exactly (every group, every member, with multiplicity).
%%%
%%% Real `peer' nodes and the real `priv/reckon_cnode', private epmd (run
%%% with `test/erl/run_ct.sh'). Durations are logged, not asserted (the
%%% figures belong to `make bench'); every wait is bounded.
%%%
%%% Membership plan, the same for both directions: group `I' (1..10,000) is
%%% `{Tag, <<"I">>, emitters}' with 10 members taken from 1,000 processes;
%%% even groups have 10 distinct members, odd groups 5 members joined twice
%%% each.
%%% @end
-module(reckon_cnode_pg_scale_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib, [start_cnode/3,
                      cleanup/1, start_meshed_peers/3, start_pg_scope/2, pcall/4,
                      pcall/5, wait_until/3, unique_name/1, now_ms/0, node_of/1]).

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([beam_to_cnode_100k/1, cnode_to_beam_100k/1]).

%% run on peers
-export([populate/4, snapshot/2, summary/2]).

-define(SCOPE, reckon_db_pg).
-define(GROUPS, 10000).
-define(PER_GROUP, 10).
-define(PROCS, 1000).
-define(MEMBERSHIPS, (?GROUPS * ?PER_GROUP)).
%% bound for a 100k sync / 50k joins to be absorbed
-define(SYNC_WAIT, 30000).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [beam_to_cnode_100k, cnode_to_beam_100k].

init_per_suite(Config) ->
    rc_test_lib:suite_init(Config).

end_per_suite(Config) ->
    rc_test_lib:suite_end(Config, [testcase, suite]).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    cleanup([testcase]),
    ok.

%%%===================================================================
%%% Cases
%%%===================================================================

%% BEAM -> C: one peer holds 100k memberships, then the C node starts and
%% absorbs them through the sync of its scope; its view equals the peer's.
beam_to_cnode_100k(_Config) ->
    [P] = start_meshed_peers("rcn_scale", 1, testcase),
    Scope = start_pg_scope(P, ?SCOPE),
    Tag = tag(),
    T0 = now_ms(),
    ok = pcall(P, ?MODULE, populate, [?SCOPE, Tag, ?GROUPS, ?PROCS], 60000),
    ct:log("populated ~b memberships on ~p in ~b ms",
           [?MEMBERSHIPS, node_of(P), now_ms() - T0]),
    Beam = pcall(P, ?MODULE, snapshot, [?SCOPE, Tag], 60000),
    ?assertEqual(?GROUPS, length(Beam)),
    ?assertEqual(?MEMBERSHIPS, lists:sum([length(M) || {_, M} <- Beam])),
    T1 = now_ms(),
    C = start_cnode(unique_name("rcn_scalec"), ["--seed", atom_to_list(node_of(P))],
                    testcase),
    await(fun() -> maps:with([groups, members], stats(C)) end,
          #{groups => ?GROUPS, members => ?MEMBERSHIPS}, ?SYNC_WAIT, c_absorbed_sync),
    ct:log("C node started and absorbed the sync in ~b ms", [now_ms() - T1]),
    T2 = now_ms(),
    CView = c_snapshot(C, Tag),
    ct:log("read the C view (~b requests) in ~b ms", [?GROUPS + 1, now_ms() - T2]),
    compare(Beam, CView, c_view),
    ct:log("stats: ~p", [stats(C)]),
    ?assertMatch(#{errors := #{pg_malformed := 0}}, stats(C)),
    ?assertEqual(Scope, pcall(P, erlang, whereis, [?SCOPE])).

%% C -> BEAM: 1,000 C processes join 100k memberships, half before the
%% BEAM scopes exist (they arrive in the sync) and half after (join
%% messages); every BEAM node's pg view equals the plan.
cnode_to_beam_100k(_Config) ->
    Peers = [P1 | _] = start_meshed_peers("rcn_scale", 3, testcase),
    C = start_cnode(unique_name("rcn_scalec"), ["--seed", atom_to_list(node_of(P1))],
                    testcase),
    [wait_until(fun() -> lists:member(node_of(C), pcall(P, erlang, nodes, [hidden])) end,
                10000, {connected_to_c, node_of(P)})
     || P <- Peers],
    {ok, Pids} = ccall(C, {spawn_idle, ?PROCS}),
    ?assertEqual(?PROCS, length(Pids)),
    PidT = list_to_tuple(Pids),
    Tag = tag(),
    Half = ?GROUPS div 2,
    T0 = now_ms(),
    c_join(C, Tag, PidT, 1, Half),
    ct:log("~b C joins (requests) in ~b ms", [Half, now_ms() - T0]),
    T1 = now_ms(),
    Scopes = [{node_of(P), start_pg_scope(P, ?SCOPE)} || P <- Peers],
    c_join(C, Tag, PidT, Half + 1, ?GROUPS),
    Expected = lists:sort([{group(Tag, I), lists:sort(plan(I, PidT))}
                           || I <- lists:seq(1, ?GROUPS)]),
    [await(fun() -> pcall(P, ?MODULE, summary, [?SCOPE, Tag], 60000) end,
           {?GROUPS, ?MEMBERSHIPS}, ?SYNC_WAIT, {beam_absorbed, node_of(P)})
     || P <- Peers],
    ct:log("every BEAM scope has all ~b memberships ~b ms after the scopes started",
           [?MEMBERSHIPS, now_ms() - T1]),
    [compare(Expected, pcall(P, ?MODULE, snapshot, [?SCOPE, Tag], 60000),
             {beam_view, node_of(P)})
     || P <- Peers],
    ?assertEqual(Expected, c_snapshot(C, Tag)),
    ?assertMatch(#{groups := ?GROUPS, members := ?MEMBERSHIPS, peers := 3}, stats(C)),
    ?assertEqual(Scopes, [{node_of(P), pcall(P, erlang, whereis, [?SCOPE])}
                          || P <- Peers]).

%%%===================================================================
%%% Run on peers
%%%===================================================================

%% Spawns NProcs idle processes on this node and joins them to NGroups
%% groups of scope Scope as plan/2 says.
-spec populate(atom(), atom(), pos_integer(), pos_integer()) -> ok.
populate(Scope, Tag, NGroups, NProcs) ->
    PidT = list_to_tuple([spawn(timer, sleep, [infinity])
                          || _ <- lists:seq(1, NProcs)]),
    lists:foreach(fun(I) -> ok = pg:join(Scope, group(Tag, I), plan(I, PidT)) end,
                  lists:seq(1, NGroups)).

%% [{Group, SortedMembers}] of the groups tagged Tag, sorted.
-spec snapshot(atom(), atom()) -> [{term(), [pid()]}].
snapshot(Scope, Tag) ->
    lists:sort([{G, lists:sort(pg:get_members(Scope, G))}
                || G <- pg:which_groups(Scope), is_tagged(G, Tag)]).

%% {Groups, Memberships} tagged Tag in this node's view.
-spec summary(atom(), atom()) -> {non_neg_integer(), non_neg_integer()}.
summary(Scope, Tag) ->
    Groups = [G || G <- pg:which_groups(Scope), is_tagged(G, Tag)],
    {length(Groups), lists:sum([length(pg:get_members(Scope, G)) || G <- Groups])}.

%%%===================================================================
%%% Helpers
%%%===================================================================

tag() ->
    list_to_atom(unique_name("scale")).

group(Tag, I) ->
    {Tag, integer_to_binary(I), emitters}.

is_tagged({Tag, _, emitters}, Tag) -> true;
is_tagged(_, _) -> false.

%% Members of group I: 10 processes of PidT; odd groups repeat each of 5.
plan(I, PidT) ->
    N = tuple_size(PidT),
    [element(1 + (I * ?PER_GROUP + (case I rem 2 of 0 -> K; 1 -> K div 2 end)) rem N,
             PidT)
     || K <- lists:seq(0, ?PER_GROUP - 1)].

c_join(C, Tag, PidT, From, To) ->
    lists:foreach(
      fun(I) ->
              {ok, ok} = ccall(C, {pg_join, ?SCOPE, group(Tag, I), plan(I, PidT)})
      end, lists:seq(From, To)).

%% The C node's view of the groups tagged Tag, as snapshot/2 gives it.
c_snapshot(C, Tag) ->
    {ok, Groups} = ccall(C, {pg_which_groups, ?SCOPE}),
    lists:sort([begin
                    {ok, M} = ccall(C, {pg_members, ?SCOPE, G}),
                    {G, lists:sort(M)}
                end || G <- Groups, is_tagged(G, Tag)]).

%% Exact comparison; on a difference, log a few differing groups.
compare(Same, Same, _What) ->
    ok;
compare(Expected, Got, What) ->
    Missing = ordsets:subtract(Expected, Got),
    Extra = ordsets:subtract(Got, Expected),
    ct:log("~p: ~b groups differ; first missing ~p~nfirst extra ~p",
           [What, length(Missing), lists:sublist(Missing, 3), lists:sublist(Extra, 3)]),
    ct:fail({views_differ, What, length(Expected), length(Got)}).

ccall(C, Req) ->
    rc_test_lib:ccall(C, Req, 30000).

stats(C) ->
    rc_test_lib:cnode_stats(C, 30000).

%% Polls every 50 ms (the values are 10k-group summaries).
await(Fun, Expected, Timeout, What) ->
    rc_test_lib:await_value(Fun, Expected, Timeout, What, 50).
