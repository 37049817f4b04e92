%%% @doc The stand-in's emitter: registered under its emitter name, a
%%% member of `{Store, Sub, emitters}', it delivers `{events, [Event]}' to
%%% its subscriber for every `{broadcast | forward_to_local, Topic, Event}'
%%% and counts them, so a test can see each emitter's share.
-module(reckon_db_emitter).
-behaviour(gen_server).

-export([start_pool/4, stop_pool/2, taken/1]).
-export([start_link/4]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% @doc Starts a subscription's pool: `PoolSize' emitters under the names
%% `persist_emitters/3' gives, delivering to `Subscriber'.
-spec start_pool(atom(), binary(), pos_integer(), pid()) -> {ok, [pid()]}.
start_pool(Store, Sub, PoolSize, Subscriber) ->
    Names = reckon_db_emitter_group:persist_emitters(Store, Sub, PoolSize),
    {ok, [begin
              {ok, Pid} = supervisor:start_child(reckon_db_emitter_sup,
                                                 [Store, Sub, Name, Subscriber]),
              Pid
          end || Name <- Names]}.

-spec stop_pool(atom(), binary()) -> ok.
stop_pool(Store, Sub) ->
    _ = [gen_server:stop(Name) || Name <- reckon_db_emitter_group:retrieve_emitters(Store, Sub),
                                  whereis(Name) =/= undefined],
    ok.

%% @doc Events this emitter has taken.
-spec taken(pid() | atom()) -> non_neg_integer().
taken(Emitter) ->
    gen_server:call(Emitter, taken).

-spec start_link(atom(), binary(), atom(), pid()) -> {ok, pid()} | {error, term()}.
start_link(Store, Sub, Name, Subscriber) ->
    gen_server:start_link({local, Name}, ?MODULE, {Store, Sub, Subscriber}, []).

init({Store, Sub, Subscriber}) ->
    ok = reckon_db_emitter_group:join(Store, Sub, self()),
    {ok, #{store => Store, sub => Sub, subscriber => Subscriber, taken => 0}}.

handle_call(taken, _From, #{taken := N} = St) ->
    {reply, N, St}.

handle_cast({update_subscriber, Pid}, St) ->
    {noreply, St#{subscriber := Pid}};
handle_cast(_Msg, St) ->
    {noreply, St}.

handle_info({Kind, _Topic, Event}, #{subscriber := Sub, taken := N} = St)
  when Kind =:= broadcast; Kind =:= forward_to_local ->
    Sub ! {events, [Event]},
    {noreply, St#{taken := N + 1}};
handle_info({events, Events}, #{subscriber := Sub} = St) ->
    Sub ! {events, Events},
    {noreply, St};
handle_info(_Info, St) ->
    {noreply, St}.

terminate(_Reason, #{store := Store, sub := Sub}) ->
    reckon_db_emitter_group:leave(Store, Sub, self()).
