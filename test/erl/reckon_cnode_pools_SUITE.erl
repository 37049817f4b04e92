%%% @doc common_test suite: C emitter pools under load, end to end.
%%%
%%% Group `concurrent': 20 processes on two `peer' BEAM nodes hammer
%%% `reckon_cnode:start_emitter_pool/4', `start_emitter_pools/1' (two
%%% starts a call, of one key or two) and `stop_emitter_pool/2' on the
%%% same 5 keys, for a bounded number of rounds, against a C node without
%%% and with `--data-dir' (where a start waits for its names' write). Then
%%% every key has at most one pool, the one the starts and stops that
%%% succeeded leave; its emitters are exactly the group's members in every
%%% view (both peers' `pg', the C node's); its registered names, the seed's
%%% names for its size, resolve to its pids in order; the C node runs no
%%% other emitter process and counted no error.
%%%
%%% Group `slow' (run by `make test' like the rest; `--group concurrent'
%%% leaves it out): the emitter-name table after N pool starts with
%%% `--data-dir' and a `kill -9' of the C node: the C node restarted on the
%%% same directory returns, for every key, the names the seed's
%%% `persist_emitters/3' gives, and holds exactly N keys. N is the group's
%%% config value `pools' (?POOLS; RECKON_CNODE_POOLS in the environment
%%% overrides it).
%%%
%%% Real `peer' nodes and the real C node, private epmd (run with
%%% `test/erl/run_ct.sh'); every wait is bounded.
%%% @end
-module(reckon_cnode_pools_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib,
        [start_cnode/3, cleanup/1, pcall/4, pcall/5, start_shim_on/2, wait_connected/1,
         wait_until/3, await_value/4, unique_name/1, node_of/1, ccall/2, now_ms/0]).

-export([all/0, groups/0, suite/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).

-export([one_pool_per_key/1,
         one_pool_per_key_data_dir/1,
         names_after_starts_and_kill/1]).

%% run on peers
-export([hammer/5, probe_names/3, start_pools/3, check_names/4]).

-define(SCOPE, reckon_db_pg).
-define(PROPAGATE, 10000).
-define(DELIVER, 30000).

%% concurrent: processes, keys, operations per process, largest pool
-define(WORKERS, 20).
-define(KEYS, 5).
-define(ROUNDS, 40).
-define(MAX_SIZE, 3).

%% slow: pools started before the kill, through start_emitter_pools/1 in
%% chunks of ?CHUNK (the starts of a chunk share a few LMDB transactions):
%% 100,000 took 6 s on the 2-core machine this runs on. The loop of single
%% calls is kept for a shim without the batch call (each start then waits
%% for its own commit: 150 s for 100,000 at best).
-define(POOLS, 100000).
-define(CHUNK, 1000).

%%%===================================================================
%%% Structure
%%%===================================================================

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [{group, concurrent}, {group, slow}].

groups() ->
    [{concurrent, [], [one_pool_per_key, one_pool_per_key_data_dir]},
     {slow, [], [names_after_starts_and_kill]}].

init_per_suite(Config) ->
    rc_test_lib:suite_init(Config).

end_per_suite(Config) ->
    rc_test_lib:suite_end(Config, [testcase, group, suite]).

init_per_group(slow, Config) ->
    Pools = case os:getenv("RECKON_CNODE_POOLS") of
                false -> ?POOLS;
                "" -> ?POOLS;
                V -> list_to_integer(V)
            end,
    [{pools, Pools} | Config];
init_per_group(_Group, Config) ->
    Config.

end_per_group(_Group, _Config) ->
    cleanup([group]),
    ok.

%% concurrent: two meshed peers with the shim attached to a fresh C node
%% (with --data-dir for the _data_dir case); the scope pids are recorded
%% for the check at the end of the case.
init_per_testcase(names_after_starts_and_kill, Config) ->
    %% about 1 ms a pool at worst, twice: the start and the check (100,000
    %% take about 15 s in all on a quiet 2-core machine)
    ct:timetrap({seconds, 120 + ?config(pools, Config) div 500}),
    Config;
init_per_testcase(Case, Config) ->
    Peers = rc_test_lib:start_meshed_peers("rcn_pl", 2, testcase),
    DataDir = case Case of
                  one_pool_per_key_data_dir ->
                      ["--data-dir", filename:join(?config(priv_dir, Config),
                                                   unique_name("rcn_pl_dd"))];
                  _ ->
                      []
              end,
    {C, Snap} = rc_test_lib:start_attached("rcn_plc", Peers, DataDir, testcase),
    [{peers, Peers}, {cnode, C}, {scopes, Snap} | Config].

end_per_testcase(_Case, _Config) ->
    cleanup([testcase]),
    ok.

%%%===================================================================
%%% concurrent
%%%===================================================================

%% 20 processes, 10 on each peer, each with a subscriber of its own, run
%% 40 random starts (sizes 1 to 3) and stops on 5 keys, all released at
%% once. Every start answers {ok, Pids} (as many as asked) or
%% {error, already_started}, every stop ok or {error, not_found}. For
%% each key, the successful starts less the successful stops is 0 or 1,
%% and that is whether a pool runs. A running pool's account says all its
%% emitters are joined; its members in the C node's view are the pids one
%% successful start returned, and each peer's view converges to them;
%% retrieve_emitters gives the seed's names for that size and each name
%% resolves to the pid at its place (an update_subscriber cast to each name,
%% then a message to each pid, tells which subscriber each pid has). The C
%% node's processes are those it had before plus these emitters, its pool
%% gauges agree, its error counters did not move; no event went anywhere.
%% Stopping every key leaves the process count and every view as before.
one_pool_per_key(Config) ->
    hammer_case(Config).

%% The same with --data-dir: a start waits for its names' write, during
%% which a second start of the key is already_started and a stop finds
%% nothing.
one_pool_per_key_data_dir(Config) ->
    hammer_case(Config).

hammer_case(Config) ->
    Peers = [P1, P2] = ?config(peers, Config),
    C = ?config(cnode, Config),
    Keys = [{rcn_pl_store, list_to_binary(unique_name("key"))} || _ <- lists:seq(1, ?KEYS)],
    Rec = recorder(P1),
    Workers = [{I, lists:nth(1 + I rem 2, Peers)} || I <- lists:seq(1, ?WORKERS)],
    Subscribers = maps:from_list([{I, hd(collectors(P, Rec, [{worker, I}]))}
                                  || {I, P} <- Workers]),
    St0 = stats(C),
    Seed = {erlang:unique_integer([positive]), erlang:phash2(make_ref()), 17},
    ct:log("seed ~p", [Seed]),
    T0 = now_ms(),
    Ops = run_hammer(Workers, Keys, Subscribers, Seed),
    ct:log("~b operations in ~b ms", [length(Ops), now_ms() - T0]),
    log_durations(Ops),
    %% every answer is one the API promises
    Bad = [Op || {_K, Kind, Size, R, _Ms} = Op <- Ops, not valid(Kind, Size, R)],
    ?assertEqual([], Bad),
    %% a round is one op, or two for a batch of two starts
    ?assert(length(Ops) >= ?WORKERS * ?ROUNDS andalso length(Ops) =< 2 * ?WORKERS * ?ROUNDS),
    Tally = maps:from_list([{K, tally(K, Ops)} || K <- Keys]),
    ct:log("per key {ok starts, already_started, ok stops, not_found}: ~p", [Tally]),
    %% the C node's view decides which start's pool runs; every view agrees
    Running =
        lists:flatmap(
          fun({S, Sub} = K) ->
                  #{started := Started, stopped := Stopped} = maps:get(K, Tally),
                  Live = Started - Stopped,
                  ?assert(Live =:= 0 orelse Live =:= 1, {K, maps:get(K, Tally)}),
                  Members = c_members(C, K),
                  case Live of
                      0 ->
                          ?assertEqual({K, []}, {K, Members}),
                          ?assertEqual({ok, {error, not_found}},
                                       on(P2, reckon_cnode, emitter_pool_info, [S, Sub])),
                          [await_beam_group(P, K, []) || P <- Peers],
                          [];
                      1 ->
                          Pids = winner(K, Members, Ops),
                          N = length(Pids),
                          ?assertMatch({ok, {ok, #{size := N, joined := N, events_in := 0,
                                                   no_subscriber := 0}}},
                                       on(P2, reckon_cnode, emitter_pool_info, [S, Sub])),
                          [await_beam_group(P, K, Pids) || P <- Peers],
                          [{K, Pids}]
                  end
          end, Keys),
    ct:log("running after the hammer: ~p", [Running]),
    %% names: the seed's for the size of whichever start stored them last
    [begin
         Names = pcall(P2, reckon_cnode_emitter_group, retrieve_emitters, [S, Sub]),
         case lists:keyfind(K, 1, Running) of
             {K, Pids} ->
                 ?assertEqual({K, seed_names(S, Sub, length(Pids))}, {K, Names}),
                 assert_names_resolve(P1, C, Rec, Names, Pids);
             false ->
                 ?assert(lists:member(Names, [seed_names(S, Sub, Sz)
                                              || Sz <- lists:seq(1, ?MAX_SIZE)]), {K, Names})
         end
     end || {S, Sub} = K <- Keys],
    %% no other emitter: the processes are those of before plus these
    Emitters = lists:sum([length(Pids) || {_, Pids} <- Running]),
    St1 = stats(C),
    ?assertEqual(#{processes => maps:get(processes, St0) + Emitters,
                   emitter_pools => length(Running), emitter_pools_detached => 0},
                 maps:with([processes, emitter_pools, emitter_pools_detached], St1)),
    ?assertEqual(maps:get(errors, St0), maps:get(errors, St1)),
    %% every key stopped: nothing is left
    [?assertEqual({K, {ok, case lists:keymember(K, 1, Running) of
                               true -> ok;
                               false -> {error, not_found}
                           end}},
                  {K, on(P1, reckon_cnode, stop_emitter_pool, [S, Sub])})
     || {S, Sub} = K <- Keys],
    [begin
         ?assertEqual({K, []}, {K, c_members(C, K)}),
         [await_beam_group(P, K, []) || P <- Peers]
     end || K <- Keys],
    St2 = stats(C),
    ?assertEqual(#{processes => maps:get(processes, St0), emitter_pools => 0,
                   emitter_pools_detached => 0},
                 maps:with([processes, emitter_pools, emitter_pools_detached], St2)),
    ?assertEqual(maps:get(errors, St0), maps:get(errors, St2)),
    assert_no_more(Rec),
    rc_test_lib:assert_scope_pids(Peers, ?SCOPE, ?config(scopes, Config)).

%% Each worker runs hammer/5 on its peer; all are released together once
%% every one is ready. [{Key, start | stop, Size, Result, Ms}].
run_hammer(Workers, Keys, Subscribers, {A, B, C}) ->
    Self = self(),
    Runners = [spawn_link(
                 fun() ->
                         Seed = {A + I, B, C},
                         R = pcall(P, ?MODULE, hammer,
                                   [Self, Keys, ?ROUNDS, Seed, maps:get(I, Subscribers)],
                                   120000),
                         Self ! {hammered, self(), R}
                 end) || {I, P} <- Workers],
    Ready = [receive {ready, Pid} -> Pid after 30000 -> ct:fail(hammer_not_ready) end
             || _ <- Runners],
    [Pid ! go || Pid <- Ready],
    lists:append([receive {hammered, R, Ops} -> Ops
                  after 150000 -> ct:fail({hammer_timeout, R})
                  end || R <- Runners]).

%% On a peer: Rounds random operations on Keys, after the gate opens.
-spec hammer(pid(), [{atom(), binary()}], pos_integer(), tuple(), pid()) -> [tuple()].
hammer(Gate, Keys, Rounds, Seed, Subscriber) ->
    _ = rand:seed(exsss, Seed),
    Gate ! {ready, self()},
    receive go -> ok after 30000 -> exit(no_go) end,
    Pick = fun() -> lists:nth(rand:uniform(length(Keys)), Keys) end,
    lists:append([hammer_op(Pick, rand:uniform(3), Subscriber) || _ <- lists:seq(1, Rounds)]).

hammer_op(Pick, 1, Subscriber) ->
    {S, Sub} = K = Pick(),
    Size = rand:uniform(?MAX_SIZE),
    [timed(K, start, Size, fun() -> reckon_cnode:start_emitter_pool(S, Sub, Size, Subscriber) end)];
hammer_op(Pick, 2, _Subscriber) ->
    {S, Sub} = K = Pick(),
    [timed(K, stop, 0, fun() -> reckon_cnode:stop_emitter_pool(S, Sub) end)];
hammer_op(Pick, 3, Subscriber) ->
    %% a batch of two starts, of one key or of two (the second start of a
    %% key in one batch is already_started): one op per start
    Starts = [{K, rand:uniform(?MAX_SIZE)} || K <- [Pick(), Pick()]],
    T0 = erlang:monotonic_time(millisecond),
    Rs = try reckon_cnode:start_emitter_pools([{S, Sub, Size, Subscriber}
                                               || {{S, Sub}, Size} <- Starts])
         catch Class:Reason -> [{raised, Class, Reason} || _ <- Starts]
         end,
    T = erlang:monotonic_time(millisecond) - T0,
    [{K, start, Size, R, T} || {{K, Size}, R} <- lists:zip(Starts, Rs)].

timed(K, Kind, Size, F) ->
    T0 = erlang:monotonic_time(millisecond),
    R = try F() catch Class:Reason -> {raised, Class, Reason} end,
    {K, Kind, Size, R, erlang:monotonic_time(millisecond) - T0}.

valid(start, Size, {ok, Pids}) ->
    is_list(Pids) andalso length(Pids) =:= Size andalso lists:all(fun is_pid/1, Pids);
valid(start, _, {error, already_started}) -> true;
valid(stop, _, ok) -> true;
valid(stop, _, {error, not_found}) -> true;
valid(_, _, _) -> false.

tally(K, Ops) ->
    Count = fun(P) -> length([x || {K1, Kind, _, R, _} <- Ops, K1 =:= K, P(Kind, R)]) end,
    #{started => Count(fun(start, {ok, _}) -> true; (_, _) -> false end),
      already_started => Count(fun(_, R) -> R =:= {error, already_started} end),
      stopped => Count(fun(stop, ok) -> true; (_, _) -> false end),
      not_found => Count(fun(_, R) -> R =:= {error, not_found} end)}.

%% The one successful start of K whose pids are the members.
winner(K, Members, Ops) ->
    Want = lists:sort(Members),
    case [Pids || {K1, start, _, {ok, Pids}, _} <- Ops, K1 =:= K, lists:sort(Pids) =:= Want] of
        [Pids] -> Pids;
        Other -> ct:fail({no_single_start_for_members, K, Members, Other})
    end.

log_durations(Ops) ->
    Ms = lists:sort([T || {_, _, _, _, T} <- Ops]),
    N = length(Ms),
    ct:log("call durations: median ~b ms, p99 ~b ms, max ~b ms; over 1 s: ~p",
           [lists:nth(max(1, N div 2), Ms), lists:nth(max(1, N * 99 div 100), Ms),
            lists:last(Ms),
            rc_test_lib:count_by(fun({_, Kind, _, R, _}) -> {Kind, outcome(R)} end,
                                 [Op || {_, _, _, _, T} = Op <- Ops, T > 1000])]).

outcome({ok, _}) -> ok;
outcome({error, E}) -> E;
outcome(R) -> R.

%% Each name resolves to the pid at its place: from one process on P, an
%% update_subscriber cast to {Name, CNode} (a collector tagged {name, Name}
%% becomes that emitter's subscriber), then {events, [{which, Pid}]} to
%% each pid, which its emitter passes to its subscriber. Messages from one
%% process to one node arrive in order, so each pid's message reaches the
%% collector of the name that resolves to it, or (no name does) the
%% subscriber the pool was started with.
assert_names_resolve(P, C, Rec, Names, Pids) ->
    Collectors = collectors(P, Rec, [{name, N} || N <- Names]),
    ok = pcall(P, ?MODULE, probe_names, [node_of(C), lists:zip(Names, Collectors), Pids]),
    Got = await_events(Rec, length(Pids)),
    ?assertEqual(lists:sort(lists:zip(Names, Pids)),
                 lists:sort([case M of
                                 {{name, N}, {events, [{which, X}]}} -> {N, X};
                                 Other -> ct:fail({probe_went_elsewhere, Other})
                             end || M <- Got])).

-spec probe_names(node(), [{atom(), pid()}], [pid()]) -> ok.
probe_names(CNode, NameCollectors, Pids) ->
    [ok = gen_server:cast({N, CNode}, {update_subscriber, Coll}) || {N, Coll} <- NameCollectors],
    [X ! {events, [{which, X}]} || X <- Pids],
    ok.

%%%===================================================================
%%% slow
%%%===================================================================

%% N pools of one emitter each (no subscriber), started with --data-dir on
%% a C node that is then killed with SIGKILL right after the last start
%% was answered (each answer comes once the names are synced to disk).
%% Restarted on the same directory under the same name, the C node holds N
%% keys (its gauge, and the shim's copy of its table once refilled), and
%% retrieve_emitters/2 returns for every key the seed's persist_emitters
%% names for a pool of one, both through the shim and asked of the C node
%% directly; a key never started has none.
names_after_starts_and_kill(Config) ->
    N = ?config(pools, Config),
    Dir = filename:join(?config(priv_dir, Config), unique_name("rcn_kill_dd")),
    Name = unique_name("rcn_killc"),
    P = rc_test_lib:start_peer("rcn_kill", testcase),
    Args = ["--seed", atom_to_list(node_of(P)), "--data-dir", Dir],
    #{node := CNode, os_pid := OsPid} = C1 = start_cnode(Name, Args, testcase),
    start_shim_on(P, #{cnode => CNode, call_timeout => 30000}),
    wait_connected(P),
    S = rcn_kill_store,
    Prefix = list_to_binary(unique_name("k")),
    T0 = now_ms(),
    {Mode, Started, Bad, Marks} = pcall(P, ?MODULE, start_pools, [S, Prefix, N], infinity),
    Took = now_ms() - T0,
    ct:log("~b pools started (~p) in ~b ms, ~.1f per second; [{Started, Ms}]: ~w",
           [Started, Mode, Took, Started * 1000 / max(1, Took), Marks]),
    ?assertEqual({N, []}, {Started, Bad}),
    ?assertMatch(#{emitter_pools := N, emitter_name_tables := N}, stats(C1)),
    rc_test_lib:os_kill("KILL", OsPid),
    ?assertMatch({exited, St} when St =/= 0, rc_test_lib:wait_cnode_exit(C1, 10000)),
    wait_until(fun() -> not maps:get(connected, pcall(P, reckon_cnode, status, [])) end,
               ?PROPAGATE, shim_sees_kill),
    %% the shim's copy went with the connection: what it holds later came
    %% from the restarted node
    ?assertEqual(0, pcall(P, ets, info, [reckon_cnode_names, size])),
    wait_until(fun() -> not lists:keymember(Name, 1, epmd_names()) end,
               ?PROPAGATE, epmd_forgot_killed_cnode),
    T1 = now_ms(),
    #{node := CNode} = C2 = start_cnode(Name, Args, testcase),
    wait_connected(P),
    ct:log("restarted and reconnected in ~b ms", [now_ms() - T1]),
    ?assertMatch(#{connects := 2}, pcall(P, reckon_cnode, status, [])),
    ?assertMatch(#{emitter_name_tables := N, emitter_pools := 0}, stats(C2)),
    %% the shim's copy refills from the restarted node
    await_value(fun() -> pcall(P, ets, info, [reckon_cnode_names, size]) end, N,
                ?DELIVER, names_copy_refilled),
    T2 = now_ms(),
    ?assertEqual({0, []}, pcall(P, ?MODULE, check_names, [S, Prefix, N, shim], infinity)),
    ?assertEqual({0, []}, pcall(P, ?MODULE, check_names, [S, Prefix, N, CNode], infinity)),
    ct:log("names of ~b keys checked twice in ~b ms", [N, now_ms() - T2]),
    ?assertEqual([], pcall(P, reckon_cnode_emitter_group, retrieve_emitters,
                           [S, <<Prefix/binary, "-never">>])).

key(Prefix, I) ->
    <<Prefix/binary, "-", (integer_to_binary(I))/binary>>.

%% On the peer: pools 1..N of one emitter, no subscriber, through
%% reckon_cnode:start_emitter_pools/1 in chunks when the shim has it, else
%% one start_emitter_pool call after another. {Mode, Started, first bad,
%% [{Started, Ms}] every tenth of the way}.
-spec start_pools(atom(), binary(), pos_integer()) ->
          {batch | loop, non_neg_integer(), [{pos_integer(), term()}],
           [{pos_integer(), non_neg_integer()}]}.
start_pools(S, Prefix, N) ->
    {module, reckon_cnode} = code:ensure_loaded(reckon_cnode),
    put(rcn_progress, [{0, erlang:monotonic_time(millisecond)}]),
    Results =
        case erlang:function_exported(reckon_cnode, start_emitter_pools, 1) of
            true ->
                {batch, start_chunks(S, Prefix, 1, N, [])};
            false ->
                {loop, [{I, start_one(S, Prefix, I, N)} || I <- lists:seq(1, N)]}
        end,
    {Mode, Rs} = Results,
    Ok = [I || {I, {ok, [Pid]}} <- Rs, is_pid(Pid)],
    [{0, T0} | Marks] = lists:reverse(get(rcn_progress)),
    {Mode, length(Ok), lists:sublist([R || {_, Res} = R <- Rs, not is_ok1(Res)], 10),
     [{I, T - T0} || {I, T} <- Marks]}.

%% progress/2 notes the time every tenth of the way (how the rate holds up).
start_one(S, Prefix, I, N) ->
    R = reckon_cnode:start_emitter_pool(S, key(Prefix, I), 1, undefined),
    progress(I, N),
    R.

progress(I, N) ->
    case I rem max(1, N div 10) of
        0 -> put(rcn_progress, [{I, erlang:monotonic_time(millisecond)} | get(rcn_progress)]);
        _ -> ok
    end.

is_ok1({ok, [Pid]}) -> is_pid(Pid);
is_ok1(_) -> false.

start_chunks(_S, _Prefix, From, N, Acc) when From > N ->
    lists:append(lists:reverse(Acc));
start_chunks(S, Prefix, From, N, Acc) ->
    To = min(N, From + ?CHUNK - 1),
    Is = lists:seq(From, To),
    Rs = reckon_cnode:start_emitter_pools([{S, key(Prefix, I), 1, undefined} || I <- Is]),
    progress(To, N),
    Got = case length(Rs) =:= length(Is) of
              true -> lists:zip(Is, Rs);
              false -> [{From, {wrong_number_of_results, length(Rs), length(Is)}}]
          end,
    start_chunks(S, Prefix, To + 1, N, [Got | Acc]).

%% On the peer: retrieve_emitters of keys 1..N through the shim, or the
%% C node's own answer to the same request, against the seed's names for a
%% pool of one. {Mismatches, first ten}.
-spec check_names(atom(), binary(), pos_integer(), shim | node()) ->
          {non_neg_integer(), list()}.
check_names(S, Prefix, N, Via) ->
    Bad = [{I, Got, Want}
           || I <- lists:seq(1, N),
              Sub <- [key(Prefix, I)],
              Want <- [seed_names(S, Sub, 1)],
              Got <- [retrieve(Via, S, Sub)],
              Got =/= Want],
    {length(Bad), lists:sublist(Bad, 10)}.

retrieve(shim, S, Sub) ->
    reckon_cnode_emitter_group:retrieve_emitters(S, Sub);
retrieve(CNode, S, Sub) ->
    case gen_server:call({reckon_cnode, CNode}, {retrieve_emitters, S, Sub}, 30000) of
        {ok, Names} -> Names;
        Other -> {reply, Other}
    end.

epmd_names() ->
    case net_adm:names() of
        {ok, Names} -> Names;
        {error, _} -> []
    end.

%%%===================================================================
%%% Helpers
%%%===================================================================

%% The seed's persist_emitters(S, Sub, Size): emitter_name(S, Sub), then
%% emitter_name(S, Sub, I) for I in 2..Size (the model in prop_naming).
seed_names(S, Sub, Size) ->
    {ok, Names} = prop_naming:model_persist(S, Sub, Size),
    Names.

stats(C) ->
    rc_test_lib:cnode_stats(C).

%% A call on a peer: {ok, Result} | {raised, Class, Reason}.
on(P, M, F, A) ->
    pcall(P, rc_test_emitter, apply_catch, [M, F, A]).

recorder(P) ->
    pcall(P, rc_test_emitter, start_recorder, []).

collectors(P, Rec, Tags) ->
    pcall(P, rc_test_emitter, start_collectors, [Rec, Tags]).

await_events(Rec, N) ->
    ok = rc_test_emitter:recorder_await(Rec, N, ?DELIVER),
    rc_test_emitter:recorder_take(Rec).

%% Nothing more arrived: a last message through the recorder itself is
%% the only one.
assert_no_more(Rec) ->
    Rec ! {events, ['$last']},
    ok = rc_test_emitter:recorder_await(Rec, 1, ?DELIVER),
    ?assertEqual([{direct, {events, ['$last']}}], rc_test_emitter:recorder_take(Rec)).

%% The C node's members of {S, Sub, emitters} (its own emitters join it
%% before the start is answered, and leave it before a stop is).
c_members(C, {S, Sub}) ->
    {ok, Pids} = ccall(C, {pg_members, ?SCOPE, {S, Sub, emitters}}),
    Pids.

await_beam_group(P, {S, Sub}, Expected) ->
    Want = lists:sort(Expected),
    Group = {S, Sub, emitters},
    wait_until(fun() -> lists:sort(pcall(P, pg, get_members, [?SCOPE, Group])) =:= Want end,
               ?PROPAGATE, {beam_view, node_of(P), Group, Want}).
